package lookup

import (
	"fmt"
	"io/fs"
	"strings"
)

// DupPolicy is what postmap(1) does with a key that its source text defines twice.
type DupPolicy int

const (
	// DupWarn keeps the first value and warns "FILE:LINE: duplicate entry" (postmap's
	// default).
	DupWarn DupPolicy = iota
	// DupReplace keeps the last value, silently (postmap -r).
	DupReplace
	// DupIgnore keeps every record, silently, as postmap -w does for cdb: (it adds
	// without looking); readers answer with the first.
	DupIgnore
)

// SourceOptions say how ReadSource reads a postmap(1) source file.
type SourceOptions struct {
	// NoFold keeps keys as written (postmap -f); by default they are folded to lower
	// case, as postmap does for fixed-key types.
	NoFold bool
	Dups   DupPolicy
	// Warn receives the warnings postmap would print, "FILE:LINE: text". Nil discards
	// them.
	Warn func(msg string)
	// OnWarning, when not nil, receives each warning with its position in fields, in
	// place of Warn.
	OnWarning func(Warning)
	// Entries, when not nil, receives every key and value as written (before folding,
	// duplicates included) in file order: a caller that wants both postmap's view of the
	// source and the text as written reads the file once.
	Entries func(Entry)
	// Progress, if set, is called as the source is parsed with the number of the
	// physical line reached and the file's number of physical lines.
	Progress func(line, lines int)
}

// Entry is one key and value of a source file, and the line that defined it.
type Entry struct {
	Key, Value string
	Line       int
}

// Source is a postmap(1) source file, parsed.
type Source struct {
	// Entries are the records postmap would store, in the order it stores them: each key
	// once, at the place of the occurrence that wins (the first; with DupReplace the
	// last, because postmap then deletes the earlier record and appends the new one);
	// with DupIgnore every occurrence, in file order.
	Entries []Entry
	// Info describes the source file as it was read.
	Info fs.FileInfo
	// Lines is the number of physical lines.
	Lines int
}

// ReadSource reads the postmap(1) source text at path (the format in the package doc)
// with postmap's key folding and duplicate rules, for a caller that builds a table from
// it. The file is read whole, and again if it changes while being read.
//
// Lines postmap would skip are skipped with a warning; that is not an error. It returns
// an error wrapping the OS error if the file cannot be read, and one wrapping ErrSyntax
// if path is a directory.
func ReadSource(path string, opt SourceOptions) (*Source, error) {
	data, fi, err := readStable(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Count(data, "\n")
	if data != "" && data[len(data)-1] != '\n' {
		lines++
	}
	warn := func(w Warning) {
		switch {
		case opt.OnWarning != nil:
			opt.OnWarning(w)
		case opt.Warn != nil:
			opt.Warn(w.String())
		}
	}
	src := &Source{Info: fi, Lines: lines, Entries: make([]Entry, 0, lines)}
	// index maps a key to its place in Entries; a replaced entry's place is marked dead
	// with Line = 0 and the survivors are compacted at the end.
	var index map[string]int
	if opt.Dups != DupIgnore {
		index = make(map[string]int, lines)
	}
	dead := 0
	parseSource(path, data, !opt.NoFold, warn, opt.Entries, func(e entry) {
		if opt.Progress != nil {
			opt.Progress(e.line, lines)
		}
		if opt.Dups == DupIgnore {
			src.Entries = append(src.Entries, Entry{Key: e.key, Value: e.value, Line: e.line})
			return
		}
		i, dup := index[e.key]
		if !dup {
			index[e.key] = len(src.Entries)
			src.Entries = append(src.Entries, Entry{Key: e.key, Value: e.value, Line: e.line})
			return
		}
		switch opt.Dups {
		case DupWarn:
			warn(Warning{File: path, Line: e.line, Kind: WarnDuplicate, Key: e.key, Msg: fmt.Sprintf("duplicate entry: %q", e.key)})
		case DupReplace:
			src.Entries[i].Line = 0
			dead++
			index[e.key] = len(src.Entries)
			src.Entries = append(src.Entries, Entry{Key: e.key, Value: e.value, Line: e.line})
		}
	})
	if dead > 0 {
		live := src.Entries[:0]
		for _, e := range src.Entries {
			if e.Line != 0 {
				live = append(live, e)
			}
		}
		src.Entries = live
	}
	if opt.Progress != nil {
		opt.Progress(lines, lines)
	}
	return src, nil
}
