package cli

// The configuration a delivery reads, and explain, check, query and lmtp with it: the
// directory chosen as Postfix's commands choose it, main.cf with the -o overrides, and
// $queue_directory as the working directory, where relative table names resolve.

import (
	"fmt"
	"path/filepath"

	"vdeliver/maincf"
)

// configDirectory is the directory holding main.cf: dir (-c), else $MAIL_CONFIG, else
// /etc/postfix, as Postfix's commands choose it.
func configDirectory(dir string, getenv func(string) string) string {
	if dir == "" {
		dir = getenv("MAIL_CONFIG")
	}
	if dir == "" {
		dir = "/etc/postfix"
	}
	// Absolute: the working directory becomes $queue_directory once main.cf is read.
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return dir
}

// loadConfig reads main.cf from configDirectory(dir) and applies the -o overrides.
func loadConfig(dir string, overrides []string, getenv func(string) string) (*maincf.Config, error) {
	cf, err := maincf.Load(configDirectory(dir, getenv))
	if err != nil {
		return nil, err
	}
	return cf, applyOverrides(cf, overrides)
}

// applyOverrides applies -o name=value settings to cf.
func applyOverrides(cf *maincf.Config, overrides []string) error {
	for _, o := range overrides {
		if err := cf.Override(o); err != nil {
			return err
		}
	}
	return nil
}

// chdir is os.Chdir in the command (Main sets it). Tests that call run in-process leave
// it nil: their process keeps its working directory.
var chdir func(string) error

// enterQueueDirectory makes $queue_directory the working directory, where pipe(8) starts
// its commands and Postfix's daemons run, so that a relative table name ("texthash:uids")
// means the same file whoever runs vdeliver and from wherever. For a setuid-root run a
// failure refuses the delivery: the caller's own directory would choose the tables.
func enterQueueDirectory(cf *maincf.Config) error {
	if chdir == nil {
		return nil
	}
	dir, err := cf.Get("queue_directory")
	if err != nil {
		return err
	}
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("queue_directory = %s is not an absolute path", dir)
	}
	if err := chdir(dir); err != nil {
		return fmt.Errorf("queue_directory: %w", err)
	}
	return nil
}
