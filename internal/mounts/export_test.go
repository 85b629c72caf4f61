package mounts

// BreakListener closes the listener of mount target id's NFS server behind the server's back, as a
// failure would; it reports whether the mount target had a server.
func BreakListener(m *Manager, id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.servers {
		if r.mt.ID == id {
			_ = r.ln.Close()
			return true
		}
	}
	return false
}
