package fsview

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// RateLog logs what clients can cause at will (malformed or oversized records, timeouts, failed
// COMMITs, a full handle store): each message at most once per interval, the next line counting
// the ones dropped, so that no client can flood the log. Messages are constants, so its map stays
// small.
type RateLog struct {
	l     *slog.Logger
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	seen map[string]*logState
}

type logState struct {
	last    time.Time
	dropped int
}

// NewRateLog returns a RateLog passing each message to l at most once every interval.
func NewRateLog(l *slog.Logger, every time.Duration, now func() time.Time) *RateLog {
	return &RateLog{l: l, every: every, now: now, seen: make(map[string]*logState)}
}

// Rate logs msg unless it was logged less than an interval ago.
func (l *RateLog) Rate(level slog.Level, msg string, args ...any) {
	if !l.l.Enabled(context.Background(), level) {
		return
	}
	l.mu.Lock()
	st := l.seen[msg]
	if st == nil {
		st = &logState{}
		l.seen[msg] = st
	}
	now := l.now()
	if !st.last.IsZero() && now.Sub(st.last) < l.every {
		st.dropped++
		l.mu.Unlock()
		return
	}
	dropped := st.dropped
	st.last, st.dropped = now, 0
	l.mu.Unlock()
	if dropped > 0 {
		args = append(args, "suppressed", dropped)
	}
	l.l.Log(context.Background(), level, msg, args...)
}

// Error is Log at error level.
func (l *RateLog) Error(msg string, args ...any) { l.Rate(slog.LevelError, msg, args...) }
