package api_test

import (
	"sync/atomic"
	"time"
)

type atomicDuration struct{ v atomic.Int64 }

func (a *atomicDuration) Load() time.Duration { return time.Duration(a.v.Load()) }
func (a *atomicDuration) Add(d time.Duration) { a.v.Add(int64(d)) }
