package maincf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"
)

// ErrSyntax is wrapped by every error about the text of main.cf or of a value: a line
// that is not "name = value", a malformed macro expression, an expansion loop, a value
// that is not the number, boolean or time it should be.
var ErrSyntax = errors.New("syntax error")

// Warning is a problem Postfix logs but tolerates, such as a parameter set twice.
type Warning struct {
	File string
	Line int
	Msg  string
}

// String formats the warning as "FILE:LINE: msg".
func (w Warning) String() string {
	return fmt.Sprintf("%s:%d: %s", w.File, w.Line, w.Msg)
}

// Error is an error about the text of main.cf or of a parameter's value, in Postfix's
// words, with where it was written; it matches ErrSyntax without repeating its text. A
// caller that reports the position itself reads File and Line rather than the text.
type Error struct {
	// File is the file the text is in, "-o" for an Override (Line is then the
	// override's 1-based position), or "" when the position is unknown: an expansion
	// of a value that was never written anywhere, a default or a value from Set.
	File string
	Line int
	// Msg is the reason without the position.
	Msg string
}

// Error is "FILE:LINE: Msg", or Msg alone when the position is unknown.
func (e *Error) Error() string {
	if e.File == "" {
		return e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

func (e *Error) Unwrap() error { return ErrSyntax }

// OverrideError is a -o setting that is not "name=value".
type OverrideError struct {
	Setting string // the text as given to Override
	Reason  string // Postfix's words: "missing attribute name", ...
}

func (e *OverrideError) Error() string {
	return fmt.Sprintf("-o %q: %s: %v", e.Setting, e.Reason, ErrSyntax)
}

func (e *OverrideError) Unwrap() error { return ErrSyntax }

// param is one explicit setting and where it came from.
type param struct {
	value string
	file  string
	line  int
}

// overrideFile is what Line reports for a parameter set by Override.
const overrideFile = "-o"

// Config is a parsed main.cf plus Postfix's defaults. The zero value is not usable; get
// one from Load or Parse.
type Config struct {
	dir       string
	params    map[string]param
	warnings  []Warning
	overrides int
	// host is the machine's host name; a field so tests can pin it.
	host func() string
}

func newConfig(dir string) *Config {
	return &Config{
		dir:    dir,
		params: make(map[string]param, 64),
		host:   sync.OnceValue(systemHostname),
	}
}

func systemHostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		// Postfix cannot start without a host name; "localhost" keeps the derived
		// defaults well-formed, and an administrator who cares sets myhostname.
		return "localhost"
	}
	return h
}

// Load reads dir/main.cf.
//
// A missing file gives an error wrapping fs.ErrNotExist; other read errors wrap the
// OS error; a malformed line gives an *Error, "DIR/main.cf:LINE: reason", wrapping
// ErrSyntax.
func Load(dir string) (*Config, error) {
	file := filepath.Join(dir, "main.cf")
	data, err := readFile(file)
	if err != nil {
		return nil, err
	}
	c := newConfig(dir)
	if err := c.parseData(data, file); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse reads main.cf text from r; file names it in warnings and errors. The result has
// no directory: Dir returns "" and config_directory defaults to /etc/postfix.
//
// A read error is returned wrapped; a malformed line gives an *Error, "FILE:LINE:
// reason", wrapping ErrSyntax.
func Parse(r io.Reader, file string) (*Config, error) {
	c := newConfig("")
	if err := c.parse(r, file); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) parse(r io.Reader, file string) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	return c.parseData(data, file)
}

func (c *Config) parseData(data []byte, file string) error {
	var (
		logical []byte // the logical line being built
		first   int    // its first physical line number
		orphan  bool   // it began with whitespace
	)
	finish := func() error {
		if len(logical) == 0 {
			return nil
		}
		line := logical
		logical = logical[:0]
		if orphan {
			c.warnf(file, first, "logical line must not start with whitespace: %q", abbrev(string(line), 30))
			return nil
		}
		// Postfix treats the logical line as a C string.
		if i := bytes.IndexByte(line, 0); i >= 0 {
			c.warnf(file, first, "text after null byte may be ignored")
			line = line[:i]
		}
		name, value, msg := splitNameValue(string(line))
		if msg != "" {
			return &Error{File: file, Line: first, Msg: fmt.Sprintf("%s: %q", msg, string(line))}
		}
		if old, ok := c.params[name]; ok && old.value != value {
			c.warnf(file, first, "overriding earlier entry: %s=%s", name, old.value)
		}
		c.params[name] = param{value: value, file: file, line: first}
		return nil
	}
	for lineno := 1; len(data) > 0; lineno++ {
		var phys []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			phys, data = data[:i], data[i+1:]
		} else {
			phys, data = data, nil
		}
		rest := trimLeftSpace(phys)
		if len(rest) == 0 || rest[0] == '#' {
			continue
		}
		if len(rest) == len(phys) {
			if err := finish(); err != nil {
				return err
			}
			first, orphan = lineno, false
		} else if len(logical) == 0 {
			first, orphan = lineno, true
		}
		logical = append(logical, phys...)
	}
	return finish()
}

func (c *Config) warnf(file string, line int, format string, args ...any) {
	c.warnings = append(c.warnings, Warning{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// splitNameValue is Postfix's split_nameval(): it returns the name, the value and "" or
// the reason the text is not "name = value".
func splitNameValue(s string) (name, value, msg string) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i == len(s) || s[i] == '=' {
		return "", "", "missing attribute name"
	}
	start := i
	for i < len(s) && !isSpace(s[i]) && s[i] != '=' {
		i++
	}
	name = s[start:i]
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i == len(s) || s[i] != '=' {
		return "", "", "missing '=' after attribute name"
	}
	return name, trimSpace(s[i+1:]), ""
}

// isSpace is C's isspace() in the C locale, which is what Postfix's ISSPACE uses.
func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\v' || b == '\f' || b == '\r'
}

func trimLeftSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	return b
}

func trimSpace(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func abbrev(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// Dir returns the directory given to Load, or "" after Parse.
func (c *Config) Dir() string { return c.dir }

// Warnings returns what Postfix would have logged while reading the file, in file order.
func (c *Config) Warnings() []Warning {
	return append([]Warning(nil), c.warnings...)
}

// Override applies one "-o name=value" setting, as Postfix commands do: whitespace
// around the name and "=" is ignored and the value may be empty. The setting wins over
// main.cf; Line reports it as file "-o" and the override's 1-based position.
//
// Text without "=" or without a name gives an *OverrideError, which wraps ErrSyntax.
func (c *Config) Override(nameValue string) error {
	name, value, msg := splitNameValue(nameValue)
	if msg != "" {
		return &OverrideError{Setting: nameValue, Reason: msg}
	}
	c.overrides++
	c.params[name] = param{value: value, file: overrideFile, line: c.overrides}
	return nil
}

// Set gives name the raw (unexpanded) value, as if main.cf said so.
func (c *Config) Set(name, value string) {
	c.params[name] = param{value: value}
}

// IsSet reports whether name was set by main.cf, Override or Set, as opposed to
// having only a default.
func (c *Config) IsSet(name string) bool {
	_, ok := c.params[name]
	return ok
}

// Raw returns name's unexpanded value: the explicit setting, else Postfix's default.
// ok is false when the name is neither set nor a parameter with a known default.
func (c *Config) Raw(name string) (value string, ok bool) {
	return c.raw(name, "")
}

// raw is Raw with one name treated as undefined, which breaks the loop between the
// computed defaults of myhostname and mydomain.
func (c *Config) raw(name, hidden string) (string, bool) {
	if name == hidden && hidden != "" {
		return "", false
	}
	if p, ok := c.params[name]; ok {
		return p.value, true
	}
	return c.defaultValue(name)
}

// Get returns name's value with every macro expanded; an undefined name is "".
//
// A malformed expression anywhere in the expansion, or references nested more than 100
// deep (a loop), gives an *Error at the place the parameter was set, "name = raw value:
// reason", which wraps ErrSyntax.
func (c *Config) Get(name string) (string, error) {
	raw, ok := c.Raw(name)
	if !ok {
		return "", nil
	}
	v, err := c.expand(raw, "")
	if err != nil {
		file, line := c.Line(name)
		return "", &Error{File: file, Line: line, Msg: fmt.Sprintf("%s = %s: %v", name, raw, err)}
	}
	return v, nil
}

// valueError reports a value of name that is not of its type, where name was set.
func (c *Config) valueError(name, format string, args ...any) error {
	file, line := c.Line(name)
	return &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// Expand expands the macros in s against this configuration.
//
// Errors are as for Get and wrap ErrSyntax.
func (c *Config) Expand(s string) (string, error) {
	return c.expand(s, "")
}

// Int returns name's expanded value as a decimal integer (an optional sign, then
// digits).
//
// An expansion error, or a value that is not such an integer or overflows int64, gives an
// error naming the parameter and value that wraps ErrSyntax.
func (c *Config) Int(name string) (int64, error) {
	v, err := c.Get(name)
	if err != nil {
		return 0, err
	}
	n, perr := strconv.ParseInt(v, 10, 64)
	if perr != nil {
		return 0, c.valueError(name, "bad numerical configuration: %s = %s", name, v)
	}
	return n, nil
}

// Bool returns name's expanded value as a boolean: "yes" or "no", in any case, the only
// words Postfix's get_mail_conf_bool accepts.
//
// Any other value gives an error naming the parameter and value that wraps ErrSyntax.
func (c *Config) Bool(name string) (bool, error) {
	v, err := c.Get(name)
	if err != nil {
		return false, err
	}
	switch {
	case equalFoldASCII(v, "yes"):
		return true, nil
	case equalFoldASCII(v, "no"):
		return false, nil
	}
	return false, c.valueError(name, "bad boolean configuration: %s = %s", name, v)
}

func equalFoldASCII(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		a, b := s[i], t[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// maxTime is Postfix's limit for a time value: seconds in a C int (conv_time.c).
const maxTime = 1<<31 - 1

// Duration returns name's expanded value as a Postfix time: decimal digits and an
// optional unit s, m, h, d or w; without a unit the parameter's default unit applies
// (d for maximal_queue_lifetime and bounce_queue_lifetime, h for delay_warning_time,
// s otherwise).
//
// A value with a sign, no digits, another unit, more than one unit letter, or more than
// 2^31-1 seconds gives an error naming the parameter and value that wraps ErrSyntax.
func (c *Config) Duration(name string) (time.Duration, error) {
	v, err := c.Get(name)
	if err != nil {
		return 0, err
	}
	d, ok := parseTime(v, defaultUnit(name))
	if !ok {
		return 0, c.valueError(name, "bad time configuration: %s = %s", name, v)
	}
	return d, nil
}

func parseTime(v string, unit byte) (time.Duration, bool) {
	i := 0
	for i < len(v) && '0' <= v[i] && v[i] <= '9' {
		i++
	}
	if i == 0 || i < len(v)-1 {
		return 0, false
	}
	if i == len(v)-1 {
		unit = v[i]
	}
	n, err := strconv.ParseInt(v[:i], 10, 64)
	if err != nil {
		return 0, false
	}
	var scale int64
	switch unit {
	case 's':
		scale = 1
	case 'm':
		scale = 60
	case 'h':
		scale = 3600
	case 'd':
		scale = 86400
	case 'w':
		scale = 7 * 86400
	default:
		return 0, false
	}
	if n > maxTime/scale {
		return 0, false
	}
	return time.Duration(n*scale) * time.Second, true
}

// Line returns where name was set: the file and line of its last main.cf entry, "-o" and
// the override's position, or "" and 0 for a default or a value from Set.
func (c *Config) Line(name string) (file string, line int) {
	p := c.params[name]
	return p.file, p.line
}

// Names returns the names set by main.cf, Override or Set, sorted.
func (c *Config) Names() []string {
	names := make([]string, 0, len(c.params))
	for n := range c.params {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
