package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestConfigNFSLimits(t *testing.T) {
	p := filepath.Join(t.TempDir(), "efsd.json")
	if err := os.WriteFile(p, []byte(`{"nfsMaxConnections":100,"nfsMaxConnectionsPerClient":-1,"nfsMaxLargeCalls":8,"nfsIdleTimeout":"2m","nfsRecordTimeout":"10s"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	fc, err := LoadFileConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := fc.daemonConfig()
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.NFSLimits
	if l.MaxConns != 100 || l.MaxConnsPerClient != -1 || l.IdleTimeout != 2*time.Minute || l.RecordTimeout != 10*time.Second || l.MaxLargeCalls != 8 {
		t.Errorf("NFS limits %+v", l)
	}
	fc.NFSIdleTimeout = "soon"
	if _, err := fc.daemonConfig(); err == nil {
		t.Error("a bad nfsIdleTimeout was accepted")
	}
}
