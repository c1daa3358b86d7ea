package audit

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// Defaults of FileConfig.
const (
	DefaultMaxSize            = 100 << 20 // bytes
	DefaultMaxAge             = 24 * time.Hour
	DefaultKeep               = 30
	DefaultCheckpointInterval = 5 * time.Minute
	// MaxLine bounds a record line, when the file sink reads its last line
	// back and when the verifier reads a file.
	MaxLine = 1 << 20
)

// rotatedTime is the time in a rotated file's name: sortable as text.
const rotatedTime = "20060102T150405.000000000Z"

// FileConfig configures the JSON-lines file sink. Path is required; the
// zero value of every other field is its default.
type FileConfig struct {
	Path    string        // the file records are appended to; its directory must exist
	MaxSize int64         // rotate before a batch would make the file larger; 0: DefaultMaxSize
	MaxAge  time.Duration // rotate a file whose first record is older; 0: DefaultMaxAge
	Keep    int           // rotated files kept (the oldest go first); 0: DefaultKeep
	KeepFor time.Duration // rotated files older than this go; 0: no age limit
	// CheckpointKey signs a checkpoint record (KindAudit "checkpoint")
	// every CheckpointInterval, as the last line of a rotated file and at
	// Close; nil: no checkpoints.
	CheckpointKey      ed25519.PrivateKey
	CheckpointInterval time.Duration // 0: DefaultCheckpointInterval
	Instance           string        // the first part of checkpoint IDs (then ".file"); "": the host name
}

func (c FileConfig) maxSize() int64 {
	if c.MaxSize > 0 {
		return c.MaxSize
	}
	return DefaultMaxSize
}

func (c FileConfig) maxAge() time.Duration {
	if c.MaxAge > 0 {
		return c.MaxAge
	}
	return DefaultMaxAge
}

func (c FileConfig) keep() int {
	if c.Keep > 0 {
		return c.Keep
	}
	return DefaultKeep
}

func (c FileConfig) checkpointInterval() time.Duration {
	if c.CheckpointInterval > 0 {
		return c.CheckpointInterval
	}
	return DefaultCheckpointInterval
}

// Validate checks the configuration; errors name the keys (under
// audit.file).
func (c FileConfig) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, confkey.Errorf("path", "required"))
	} else if st, err := os.Stat(filepath.Dir(c.Path)); err != nil || !st.IsDir() {
		errs = append(errs, confkey.Errorf("path", "the directory %s does not exist", filepath.Dir(c.Path)))
	}
	for key, neg := range map[string]bool{"max_size": c.MaxSize < 0, "max_age": c.MaxAge < 0, "keep": c.Keep < 0,
		"keep_for": c.KeepFor < 0, "checkpoint_interval": c.CheckpointInterval < 0} {
		if neg {
			errs = append(errs, confkey.Errorf(key, "must not be negative"))
		}
	}
	return errors.Join(errs...)
}
