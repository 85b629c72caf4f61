// Package logkeys holds no code used at run time. Its test keeps every structured log key written
// anywhere in efsd's sources inside the one set documented in docs/architecture.md ("Log keys"), so
// that a log query for, say, fileSystemId finds every line about a file system, whichever package
// wrote it.
package logkeys
