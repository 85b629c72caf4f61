package api_test

import (
	"sync/atomic"
	"time"

	"github.com/efsd/efsd/internal/daemon"
)

type daemonConfig = daemon.Config

type atomicCounter struct{ v atomic.Int64 }

func (a *atomicCounter) next() int64 { return a.v.Add(1) }

type atomicDuration struct{ v atomic.Int64 }

func (a *atomicDuration) Load() time.Duration { return time.Duration(a.v.Load()) }
func (a *atomicDuration) Add(d time.Duration) { a.v.Add(int64(d)) }
