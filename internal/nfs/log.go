package nfs

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/efsd/efsd/internal/fsview"
	gonfs "github.com/willscott/go-nfs"
)

// clientInfo and clientDebug log, rate-limited, what a client caused on connection c.
func clientInfo(l *fsview.RateLog, msg string, c *rpcConn, args ...any) {
	l.Rate(slog.LevelInfo, msg, append([]any{"client", c.RemoteAddr().String()}, args...)...)
}

func clientDebug(l *fsview.RateLog, msg string, c *rpcConn, args ...any) {
	l.Rate(slog.LevelDebug, msg, append([]any{"client", c.RemoteAddr().String()}, args...)...)
}

// go-nfs has one package-wide logger (gonfs.Log), so efsd installs one of its own, once per process,
// and points it at the daemon's logger. Its Fatal and Panic levels are logged as errors and never exit
// or panic. go-nfs logs every refused client request (a failed LOOKUP, a CREATE of an existing name) as
// an error: those go to debug level. Its trace lines (every request, in full) are dropped.
var (
	gonfsLoggerOnce sync.Once
	gonfsLog        = &gonfsLogger{}
)

// InstallGoNFSLogger makes go-nfs's own output go through l, with l's format and level. It is
// process-wide, because go-nfs's logger is: the last call wins. The daemon calls it with its logger.
func InstallGoNFSLogger(l *slog.Logger) {
	gonfsLoggerOnce.Do(func() { gonfs.SetLogger(gonfsLog) })
	gonfsLog.target.Store(l)
}

// installGoNFSLogger makes sure go-nfs logs through gonfsLog (to slog.Default until the daemon
// installs its logger), never through go-nfs's own logger, which writes to stderr at any level.
func installGoNFSLogger() {
	gonfsLoggerOnce.Do(func() { gonfs.SetLogger(gonfsLog) })
}

type gonfsLogger struct {
	target atomic.Pointer[slog.Logger]
}

func (l *gonfsLogger) logger() *slog.Logger {
	if lg := l.target.Load(); lg != nil {
		return lg
	}
	return slog.Default()
}

func (l *gonfsLogger) log(level slog.Level, msg string) {
	lg := l.logger()
	if !lg.Enabled(context.Background(), level) {
		return
	}
	lg.Log(context.Background(), level, "go-nfs: "+strings.TrimSpace(msg))
}

func (l *gonfsLogger) logf(level slog.Level, format string, args ...any) {
	if !l.logger().Enabled(context.Background(), level) {
		return
	}
	l.log(level, fmt.Sprintf(format, args...))
}

func (l *gonfsLogger) SetLevel(gonfs.LogLevel)                   {}
func (l *gonfsLogger) GetLevel() gonfs.LogLevel                  { return gonfs.DebugLevel }
func (l *gonfsLogger) ParseLevel(string) (gonfs.LogLevel, error) { return gonfs.DebugLevel, nil }
func (l *gonfsLogger) Panic(args ...any)                         { l.log(slog.LevelError, fmt.Sprint(args...)) }
func (l *gonfsLogger) Fatal(args ...any)                         { l.log(slog.LevelError, fmt.Sprint(args...)) }
func (l *gonfsLogger) Error(args ...any)                         { l.log(slog.LevelDebug, fmt.Sprint(args...)) }
func (l *gonfsLogger) Warn(args ...any)                          { l.log(slog.LevelDebug, fmt.Sprint(args...)) }
func (l *gonfsLogger) Info(args ...any)                          { l.log(slog.LevelDebug, fmt.Sprint(args...)) }
func (l *gonfsLogger) Debug(args ...any)                         { l.log(slog.LevelDebug, fmt.Sprint(args...)) }
func (l *gonfsLogger) Trace(args ...any)                         {}
func (l *gonfsLogger) Print(args ...any)                         { l.log(slog.LevelDebug, fmt.Sprint(args...)) }
func (l *gonfsLogger) Panicf(format string, args ...any)         { l.logf(slog.LevelError, format, args...) }
func (l *gonfsLogger) Fatalf(format string, args ...any)         { l.logf(slog.LevelError, format, args...) }
func (l *gonfsLogger) Errorf(format string, args ...any)         { l.logf(slog.LevelDebug, format, args...) }
func (l *gonfsLogger) Warnf(format string, args ...any)          { l.logf(slog.LevelDebug, format, args...) }
func (l *gonfsLogger) Infof(format string, args ...any)          { l.logf(slog.LevelDebug, format, args...) }
func (l *gonfsLogger) Debugf(format string, args ...any)         { l.logf(slog.LevelDebug, format, args...) }
func (l *gonfsLogger) Tracef(format string, args ...any)         {}
func (l *gonfsLogger) Printf(format string, args ...any)         { l.logf(slog.LevelDebug, format, args...) }
