package local

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Reading the users file safely and editing it atomically under a lock.

// ErrPermissions is returned for a users file that others may write.
var ErrPermissions = errors.New("users file is group- or world-writable")

// readFile reads the users file at path, bounded, and refuses one that
// is not a regular file or that group or others may write (they could add
// themselves a user). A missing file is fs.ErrNotExist.
func readFile(path string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("users file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return nil, nil, fmt.Errorf("%w: %s has mode %04o, so another account could add itself a user; run chmod go-w %s", ErrPermissions, path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > maxFileSize {
		return nil, nil, fmt.Errorf("users file %s is larger than %d bytes", path, maxFileSize)
	}
	return data, fi, nil
}

// ReadFile reads and parses the users file at path without resolving
// backend passwords (for listing). Edits replace the file atomically, so
// no lock is needed to read a whole version.
func ReadFile(path string) (*File, error) {
	_, f, err := readParsed(path)
	return f, err
}

// readParsed reads the users file at path (readFile) and parses it.
func readParsed(path string) ([]byte, *File, error) {
	data, _, err := readFile(path)
	if err != nil {
		return nil, nil, err
	}
	f, err := Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, f, nil
}

// EditLockTimeout bounds how long Edit waits for another edit's lock.
var EditLockTimeout = 10 * time.Second

// Edit changes the users file at path atomically: it takes an exclusive
// lock on PATH.lock, reads and parses the file (a missing one is empty),
// applies fn, checks the result, writes it to a temporary file in the
// same directory (mode 0600, or the old file's mode without write for
// group and anything for others; the old owner kept), syncs it, renames it
// over path and syncs the directory. When fn returns an error nothing is
// written. Comments in the file are not kept.
func Edit(path string, fn func(*File) error) error {
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	data, fi, err := readFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := fn(f); err != nil {
		return err
	}
	var errs []error
	for name, u := range f.Users {
		if u == nil {
			continue
		}
		if err := CheckUserName(name); err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, u.validate(name))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	out, err := f.Marshal()
	if err != nil {
		return err
	}
	return writeAtomic(path, out, fi)
}

func lockFile(path string) (func(), error) {
	lf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(EditLockTimeout)
	for {
		err = syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			lf.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			lf.Close()
			return nil, fmt.Errorf("lock %s: another edit holds it for more than %v", path, EditLockTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return func() {
		_ = syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
		lf.Close()
	}, nil
}

func writeAtomic(path string, data []byte, old fs.FileInfo) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	mode := fs.FileMode(0o600)
	if old != nil {
		mode = old.Mode().Perm() &^ 0o137
		if st, ok := old.Sys().(*syscall.Stat_t); ok && (int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid()) {
			if err := tmp.Chown(int(st.Uid), int(st.Gid)); err != nil {
				return fmt.Errorf("keep the owner of %s: %w", path, err)
			}
		}
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
