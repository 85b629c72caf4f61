package nfs

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	gonfs "github.com/willscott/go-nfs"
)

var gonfsLoggerOnce sync.Once

// installGoNFSLogger routes go-nfs's package-wide logger to slog.Default at debug level: go-nfs
// logs every refused client request (a failed LOOKUP, a CREATE of an existing name) as an error.
// Its Fatal and Panic levels are logged as errors and never exit or panic.
func installGoNFSLogger() {
	gonfsLoggerOnce.Do(func() { gonfs.SetLogger(&gonfsLogger{}) })
}

type gonfsLogger struct{}

func (l *gonfsLogger) log(level slog.Level, msg string) {
	lg := slog.Default()
	if !lg.Enabled(context.Background(), level) {
		return
	}
	lg.Log(context.Background(), level, "go-nfs: "+strings.TrimSpace(msg))
}

func (l *gonfsLogger) logf(level slog.Level, format string, args ...any) {
	if !slog.Default().Enabled(context.Background(), level) {
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
func (l *gonfsLogger) Info(args ...any)                          {}
func (l *gonfsLogger) Debug(args ...any)                         {}
func (l *gonfsLogger) Trace(args ...any)                         {}
func (l *gonfsLogger) Print(args ...any)                         {}
func (l *gonfsLogger) Panicf(format string, args ...any)         { l.logf(slog.LevelError, format, args...) }
func (l *gonfsLogger) Fatalf(format string, args ...any)         { l.logf(slog.LevelError, format, args...) }
func (l *gonfsLogger) Errorf(format string, args ...any)         { l.logf(slog.LevelDebug, format, args...) }
func (l *gonfsLogger) Warnf(format string, args ...any)          { l.logf(slog.LevelDebug, format, args...) }
func (l *gonfsLogger) Infof(format string, args ...any)          {}
func (l *gonfsLogger) Debugf(format string, args ...any)         {}
func (l *gonfsLogger) Tracef(format string, args ...any)         {}
func (l *gonfsLogger) Printf(format string, args ...any)         {}
