package volume

import (
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"
)

const meterUnit = 4096

// emptySize is the SizeInBytes EFS reports for a new, empty file system.
const emptySize = 6144

func roundUp(n int64) int64 {
	return (n + meterUnit - 1) / meterUnit * meterUnit
}

// Metered returns the size EFS would meter for the tree at root: a regular
// file counts its logical size rounded up to 4 KiB (less for a sparse file,
// whose allocated blocks count instead), a directory its own size rounded
// up to 4 KiB, and a symbolic link or special file 4 KiB. The root counts at
// least emptySize, so an empty file system meters what EFS reports for one.
func Metered(root string) (int64, error) {
	var total int64
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path != root && errorsIsNotExist(err) {
				return nil // removed while we walked
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			if errorsIsNotExist(err) {
				return nil
			}
			return err
		}
		switch {
		case info.Mode().IsRegular():
			size := info.Size()
			if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Blocks*512 < size {
				size = st.Blocks * 512
			}
			total += roundUp(size)
		case info.IsDir() && path == root:
			total += max(roundUp(info.Size()), emptySize)
		case info.IsDir():
			total += roundUp(max(info.Size(), 1))
		default:
			total += meterUnit
		}
		return nil
	})
	return total, err
}

func errorsIsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
