package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// version describes this binary from what the Go toolchain recorded in it:
// the module version (a tag, or a pseudo-version, or "(devel)" for a build
// from a work tree), the VCS revision and time and whether the tree had
// uncommitted changes, and the Go version.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "efsd (no build information)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "efsd %s", bi.Main.Version)
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		fmt.Fprintf(&b, " revision %s", rev)
		if settings["vcs.modified"] == "true" {
			b.WriteString(" (modified)")
		}
		if t := settings["vcs.time"]; t != "" {
			fmt.Fprintf(&b, " committed %s", t)
		}
	}
	fmt.Fprintf(&b, " %s %s/%s", bi.GoVersion, settings["GOOS"], settings["GOARCH"])
	return b.String()
}
