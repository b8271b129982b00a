package maincf

import (
	"fmt"

	"vdeliver/internal/rawfile"
)

// readFile reads the whole file at path, with os.Open's errors for opening it and "read
// FILE: ..." for reading it, without the poller and in one buffer of its size
// (internal/rawfile): a delivery process reads main.cf once, at start-up.
func readFile(path string) ([]byte, error) {
	f, err := rawfile.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := rawfile.ReadAll(f, 512)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}
