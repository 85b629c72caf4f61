package nfs

import (
	"sync"
	"sync/atomic"

	"github.com/efsd/efsd/internal/netlimit"
)

// Procedures are counted in a fixed table, so that whatever a client
// sends, the counters (and the metrics built on them) stay bounded: NFSv3's
// 22 procedures, MOUNT's 6, and one slot for every other call.
var nfsProcNames = [...]string{"NULL", "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READLINK", "READ", "WRITE", "CREATE",
	"MKDIR", "SYMLINK", "MKNOD", "REMOVE", "RMDIR", "RENAME", "LINK", "READDIR", "READDIRPLUS", "FSSTAT", "FSINFO",
	"PATHCONF", "COMMIT"}

var mountProcNames = [...]string{"NULL", "MNT", "DUMP", "UMNT", "UMNTALL", "EXPORT"}

const procSlots = len(nfsProcNames) + len(mountProcNames) + 1

// slot is the table index of a call: NFSv3, then MOUNT, then the rest.
func slot(call *callInfo) int {
	switch {
	case call.prog == progNFS && call.vers == 3 && call.proc < uint32(len(nfsProcNames)):
		return int(call.proc)
	case call.prog == progMount && call.proc < uint32(len(mountProcNames)):
		return len(nfsProcNames) + int(call.proc)
	}
	return procSlots - 1
}

// ProcStats counts one procedure's calls and the bytes of their records
// (RPC record marker included) in each direction.
type ProcStats struct {
	Program   string // "nfs", "mount" or "other" (any other program, version or procedure)
	Procedure string // e.g. "READ"; "other" for the other slot
	Calls     uint64
	BytesIn   uint64
	BytesOut  uint64
}

// Stats is what a Server has served since it started.
type Stats struct {
	Procs []ProcStats // every slot, called or not, in a fixed order
	Conns netlimit.Stats
}

// serverStats are the Server's counters, updated by its connections.
type serverStats struct {
	calls, in, out [procSlots]atomic.Uint64

	mu  sync.Mutex
	lns []*netlimit.Listener
}

func (st *serverStats) call(call *callInfo, recLen int) {
	if st == nil || call == nil {
		return
	}
	i := slot(call)
	st.calls[i].Add(1)
	st.in[i].Add(uint64(recLen))
}

func (st *serverStats) reply(call *callInfo, n int) {
	if st == nil || call == nil || n <= 0 {
		return
	}
	st.out[slot(call)].Add(uint64(n))
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	st := &s.stats
	out := Stats{Procs: make([]ProcStats, procSlots)}
	for i := range procSlots {
		p := &out.Procs[i]
		switch {
		case i < len(nfsProcNames):
			p.Program, p.Procedure = "nfs", nfsProcNames[i]
		case i < len(nfsProcNames)+len(mountProcNames):
			p.Program, p.Procedure = "mount", mountProcNames[i-len(nfsProcNames)]
		default:
			p.Program, p.Procedure = "other", "other"
		}
		p.Calls, p.BytesIn, p.BytesOut = st.calls[i].Load(), st.in[i].Load(), st.out[i].Load()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, ln := range st.lns {
		ls := ln.Stats()
		out.Conns.Open += ls.Open
		out.Conns.Accepted += ls.Accepted
		out.Conns.Refused += ls.Refused
		out.Conns.AcceptErrors += ls.AcceptErrors
	}
	return out
}
