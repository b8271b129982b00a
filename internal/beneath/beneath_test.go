package beneath

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// roots returns one Root on dir per implementation this system has: the kernel's
// openat2 and os.Root.
func roots(t *testing.T, dir string) map[string]*Root {
	t.Helper()
	out := map[string]*Root{}
	or, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	out["osroot"] = &Root{name: dir, fd: -1, os: or}
	if runtime.GOOS == "linux" && !forceOSRoot {
		if !kernelBeneath() {
			// Legitimate (Linux < 5.6, a seccomp filter): Open then gives the os.Root.
			t.Log("openat2(RESOLVE_BENEATH) unavailable: testing os.Root only")
		} else {
			r, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Kernel() {
				t.Fatal("Open did not choose openat2 although the kernel has it")
			}
			out["openat2"] = r
		}
	}
	for _, r := range out {
		t.Cleanup(func() { r.Close() })
	}
	return out
}

// tree builds the test layout and returns the root directory and the outside one.
//
//	outside/secret          "secret"
//	root/dir/file           "in"
//	root/lin -> dir/file    root/dlin -> dir
//	root/lout -> ../outside/secret
//	root/labs -> <abs>/outside/secret
//	root/dlout -> ../outside
//	root/dir/up -> ../..
//	root/dangling -> ../outside/new
func tree(t *testing.T) (root, outside string) {
	t.Helper()
	top := t.TempDir()
	root, outside = filepath.Join(top, "root"), filepath.Join(top, "outside")
	for _, d := range []string{outside, filepath.Join(root, "dir")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(outside, "secret"), "secret")
	write(t, filepath.Join(root, "dir/file"), "in")
	links := map[string]string{
		"lin":      "dir/file",
		"dlin":     "dir",
		"lout":     "../outside/secret",
		"labs":     filepath.Join(outside, "secret"),
		"dlout":    "../outside",
		"dir/up":   "../..",
		"dangling": "../outside/new",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root, outside
}

func write(t *testing.T, name, s string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// unchanged fails the test if anything but "secret" is in outside, or its content moved.
func unchanged(t *testing.T, outside string) {
	t.Helper()
	ents, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "secret" {
		t.Fatalf("outside holds %v, want only secret", ents)
	}
	b, err := os.ReadFile(filepath.Join(outside, "secret"))
	if err != nil || string(b) != "secret" {
		t.Fatalf("outside/secret = %q, %v", b, err)
	}
}

func TestOpen(t *testing.T) {
	tests := []struct {
		name string
		flag int
		want string // content, or "" when err is set
		err  error
	}{
		{"dir/file", os.O_RDONLY, "in", nil},
		{"lin", os.O_RDONLY, "in", nil},
		{"dlin/file", os.O_RDONLY, "in", nil},
		{"dir/../dir/file", os.O_RDONLY, "in", nil},
		{"./dir//file", os.O_RDONLY, "in", nil},
		{"../outside/secret", os.O_RDONLY, "", ErrEscapes},
		{"dir/../../outside/secret", os.O_RDONLY, "", ErrEscapes},
		{"lout", os.O_RDONLY, "", ErrEscapes},
		{"labs", os.O_RDONLY, "", ErrEscapes},
		{"dlout/secret", os.O_RDONLY, "", ErrEscapes},
		{"dir/up/outside/secret", os.O_RDONLY, "", ErrEscapes},
		{"/etc/passwd", os.O_RDONLY, "", ErrEscapes},
		{"lout", os.O_WRONLY | os.O_APPEND, "", ErrEscapes},
		{"dlout/new", os.O_WRONLY | os.O_CREATE, "", ErrEscapes},
		{"dangling", os.O_WRONLY | os.O_CREATE | os.O_EXCL, "", fs.ErrExist},
		{"lin", os.O_RDONLY | syscall.O_NOFOLLOW, "", syscall.ELOOP},
		{"missing", os.O_RDONLY, "", fs.ErrNotExist},
		{"dir/file/x", os.O_RDONLY, "", syscall.ENOTDIR},
	}
	root, outside := tree(t)
	for impl, r := range roots(t, root) {
		for _, tt := range tests {
			f, err := r.OpenFile(tt.name, tt.flag, 0o600)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Errorf("%s: OpenFile(%q, %#x) = %v, want %v", impl, tt.name, tt.flag, err, tt.err)
				}
				if f != nil {
					f.Close()
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: OpenFile(%q) = %v", impl, tt.name, err)
				continue
			}
			b, err := io.ReadAll(f)
			f.Close()
			if err != nil || string(b) != tt.want {
				t.Errorf("%s: %q read %q, %v; want %q", impl, tt.name, b, err, tt.want)
			}
		}
		unchanged(t, outside)
	}
}

func TestEscapeText(t *testing.T) {
	// The sender sees this text (classify keeps it), whichever implementation refused.
	root, _ := tree(t)
	for impl, r := range roots(t, root) {
		_, err := r.Open("lout")
		var pe *fs.PathError
		if !errors.As(err, &pe) || pe.Err.Error() != "path escapes from parent" {
			t.Errorf("%s: Open(lout) = %#v, want a PathError saying %q", impl, err, "path escapes from parent")
		}
	}
}

func TestStat(t *testing.T) {
	root, _ := tree(t)
	for impl, r := range roots(t, root) {
		fi, err := r.Stat("lin")
		if err != nil || !fi.Mode().IsRegular() || fi.Size() != 2 {
			t.Errorf("%s: Stat(lin) = %v, %v; want the 2-byte file", impl, fi, err)
		}
		if fi, err := r.Lstat("lout"); err != nil || fi.Mode()&fs.ModeSymlink == 0 || fi.Name() != "lout" {
			t.Errorf("%s: Lstat(lout) = %v, %v; want the link itself", impl, fi, err)
		}
		if _, err := r.Stat("lout"); !errors.Is(err, ErrEscapes) {
			t.Errorf("%s: Stat(lout) = %v, want ErrEscapes", impl, err)
		}
		if _, err := r.Lstat("dlout/secret"); !errors.Is(err, ErrEscapes) {
			t.Errorf("%s: Lstat(dlout/secret) = %v, want ErrEscapes", impl, err)
		}
		if fi, err := r.Stat("."); err != nil || !fi.IsDir() {
			t.Errorf("%s: Stat(.) = %v, %v", impl, fi, err)
		}
		if _, err := r.Stat("missing"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: Stat(missing) = %v, want ErrNotExist", impl, err)
		}
		// Stat needs no read permission on the file (O_PATH), as stat(2).
		if os.Geteuid() != 0 {
			write(t, filepath.Join(root, "dir/noread"), "x")
			os.Chmod(filepath.Join(root, "dir/noread"), 0)
			if _, err := r.Stat("dir/noread"); err != nil {
				t.Errorf("%s: Stat of an unreadable file: %v", impl, err)
			}
		}
	}
}

func TestMkdir(t *testing.T) {
	root, outside := tree(t)
	for impl, r := range roots(t, root) {
		d := "new-" + impl
		if err := r.Mkdir(d, 0o700); err != nil {
			t.Fatalf("%s: Mkdir: %v", impl, err)
		}
		if fi, err := os.Lstat(filepath.Join(root, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %s not a directory: %v", impl, d, err)
		}
		if err := r.Mkdir(d+"/sub/", 0o700); err != nil {
			t.Errorf("%s: Mkdir with a trailing slash: %v", impl, err)
		}
		for _, tt := range []struct {
			name string
			err  error
		}{
			{d, fs.ErrExist},
			{"lout", fs.ErrExist},
			{"dangling", fs.ErrExist},
			{"dir/..", fs.ErrExist},
			{".", fs.ErrExist},
			{"dlout/new", ErrEscapes},
			{"dir/up/outside/new", ErrEscapes},
			{"../outside/new", ErrEscapes},
			{"missing/new", fs.ErrNotExist},
		} {
			if err := r.Mkdir(tt.name, 0o700); !errors.Is(err, tt.err) {
				t.Errorf("%s: Mkdir(%q) = %v, want %v", impl, tt.name, err, tt.err)
			}
		}
		unchanged(t, outside)
	}
}

func TestRemove(t *testing.T) {
	for _, impl := range []string{"osroot", "openat2"} {
		root, outside := tree(t)
		r := roots(t, root)[impl]
		if r == nil {
			continue
		}
		for _, tt := range []struct {
			name string
			err  error
		}{
			{"dlout/secret", ErrEscapes},
			{"../outside/secret", ErrEscapes},
			{"dir/up/outside/secret", ErrEscapes},
			{"missing", fs.ErrNotExist},
			{"dir", syscall.ENOTEMPTY},
			{"lout", nil}, // the link, not its target
			{"dlout", nil},
			{"dir/file", nil},
			{"dir/up", nil},
			{"dir", nil}, // now empty
		} {
			if err := r.Remove(tt.name); !errors.Is(err, tt.err) {
				t.Errorf("%s: Remove(%q) = %v, want %v", impl, tt.name, err, tt.err)
			}
			unchanged(t, outside)
		}
		if _, err := os.Lstat(filepath.Join(root, "lout")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: lout still there: %v", impl, err)
		}
		if err := r.Remove("."); err == nil {
			t.Errorf("%s: Remove(.) succeeded", impl)
		}
	}
}

func TestLink(t *testing.T) {
	root, outside := tree(t)
	for impl, r := range roots(t, root) {
		name := "dir/link-" + impl
		if err := r.Link("dir/file", name); err != nil {
			t.Fatalf("%s: Link: %v", impl, err)
		}
		a, _ := os.Stat(filepath.Join(root, "dir/file"))
		b, err := os.Stat(filepath.Join(root, name))
		if err != nil || !os.SameFile(a, b) {
			t.Errorf("%s: %s is not a link to dir/file: %v", impl, name, err)
		}
		// The link itself, never its target: this must not become a link to secret.
		if err := r.Link("lout", "dir/lout-"+impl); err != nil {
			t.Errorf("%s: Link of a symlink: %v", impl, err)
		} else if fi, err := os.Lstat(filepath.Join(root, "dir/lout-"+impl)); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("%s: linked the symlink's target: %v %v", impl, fi, err)
		}
		for _, tt := range []struct {
			old, new string
			err      error
		}{
			{"dir/file", name, fs.ErrExist},
			{"dir/file", "lout", fs.ErrExist}, // never replaced, never followed
			{"dlout/secret", "stolen", ErrEscapes},
			{"dir/file", "dlout/planted", ErrEscapes},
			{"dir/file", "../outside/planted", ErrEscapes},
			{"dir/file", "dir/..", syscall.EINVAL},
		} {
			err := r.Link(tt.old, tt.new)
			if tt.err == syscall.EINVAL && impl == "osroot" {
				// os.Root answers what link(2) says for an existing "..": EEXIST.
				if err == nil {
					t.Errorf("%s: Link(%q, %q) succeeded", impl, tt.old, tt.new)
				}
				continue
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("%s: Link(%q, %q) = %v, want %v", impl, tt.old, tt.new, err, tt.err)
			}
		}
		unchanged(t, outside)
	}
}

// TestSwapRace swaps a directory on the path for a symbolic link out of the root while
// opens, creations and directory creations run through it: none may ever reach outside.
func TestSwapRace(t *testing.T) {
	for _, impl := range []string{"osroot", "openat2"} {
		t.Run(impl, func(t *testing.T) {
			root, outside := tree(t)
			r := roots(t, root)[impl]
			if r == nil {
				t.Skip("openat2 unavailable on this kernel")
			}
			flip := filepath.Join(root, "flip")
			real := filepath.Join(root, "real")
			if err := os.Mkdir(real, 0o755); err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(real, "secret"), "in")
			var stop atomic.Bool
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				tmp := filepath.Join(root, "flip.tmp")
				for i := 0; !stop.Load(); i++ {
					os.Remove(tmp)
					if i%2 == 0 {
						os.Symlink("../outside", tmp)
					} else {
						os.Symlink("real", tmp)
					}
					os.Rename(tmp, flip) // atomic: flip is always one or the other
				}
			}()
			var inside, refused int
			for i := 0; i < 3000; i++ {
				f, err := r.Open("flip/secret")
				if err == nil {
					b, _ := io.ReadAll(f)
					f.Close()
					if string(b) != "in" {
						stop.Store(true)
						wg.Wait()
						t.Fatalf("read %q through the swapped link", b)
					}
					inside++
				} else {
					refused++
				}
				if f, err := r.OpenFile("flip/new", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
					f.Close()
					r.Remove("flip/new")
				}
				if r.Mkdir("flip/newdir", 0o700) == nil {
					r.Remove("flip/newdir")
				}
			}
			stop.Store(true)
			wg.Wait()
			unchanged(t, outside)
			t.Logf("%d opens inside, %d refused", inside, refused)
			if inside == 0 || refused == 0 {
				t.Errorf("the race never went both ways (%d inside, %d refused): the test proved nothing", inside, refused)
			}
		})
	}
}

func TestOpenRootErrors(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want ErrNotExist", err)
	}
	f := filepath.Join(t.TempDir(), "file")
	write(t, f, "x")
	if _, err := Open(f); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("Open(file) = %v, want ENOTDIR", err)
	}
	r, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Open("."); err == nil {
		t.Error("Open after Close succeeded")
	}
}

// A trailing slash asks for a directory: it must never delete, link or create through a
// symbolic link, nor treat a file as if the slash were not there.
func TestTrailingSlash(t *testing.T) {
	for _, impl := range []string{"osroot", "openat2"} {
		root, outside := tree(t)
		r := roots(t, root)[impl]
		if r == nil {
			continue
		}
		if err := os.Mkdir(filepath.Join(root, "empty"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"dir/file/", "lin/", "dlin/", "lout/", "dlout/", "dangling/"} {
			if err := r.Remove(name); err == nil {
				t.Errorf("%s: Remove(%q) succeeded", impl, name)
			}
			if _, err := os.Lstat(filepath.Join(root, strings.TrimSuffix(name, "/"))); err != nil {
				t.Errorf("%s: Remove(%q) removed it: %v", impl, name, err)
			}
		}
		if err := r.Remove("empty/"); err != nil {
			t.Errorf("%s: Remove(empty/) = %v", impl, err)
		}
		if err := r.Link("dir/file/", "dir/l1"); err == nil {
			t.Errorf("%s: Link(dir/file/) succeeded", impl)
		}
		if err := r.Link("dlout/", "dir/l2"); err == nil {
			t.Errorf("%s: Link(dlout/) succeeded", impl)
		}
		if err := r.Mkdir("dangling/", 0o700); !errors.Is(err, fs.ErrExist) {
			t.Errorf("%s: Mkdir(dangling/) = %v, want ErrExist", impl, err)
		}
		if err := r.Mkdir("dlout/", 0o700); !errors.Is(err, fs.ErrExist) {
			t.Errorf("%s: Mkdir(dlout/) = %v, want ErrExist", impl, err)
		}
		unchanged(t, outside)
	}
}

// O_NOFOLLOW refuses a symbolic link before anything happens through it: no truncation of
// its target, no file created at a dangling link's target (os.Root alone would do both
// for a link that stays beneath the root).
func TestNoFollowNoSideEffects(t *testing.T) {
	root, outside := tree(t)
	if err := os.Symlink("dir/created", filepath.Join(root, "dlin-new")); err != nil {
		t.Fatal(err)
	}
	for impl, r := range roots(t, root) {
		f, err := r.OpenFile("lin", os.O_WRONLY|os.O_TRUNC|syscall.O_NOFOLLOW, 0)
		if !errors.Is(err, syscall.ELOOP) {
			t.Errorf("%s: OpenFile(lin, O_TRUNC|O_NOFOLLOW) = %v, want ELOOP", impl, err)
		}
		if f != nil {
			f.Close()
		}
		if b, _ := os.ReadFile(filepath.Join(root, "dir/file")); string(b) != "in" {
			t.Errorf("%s: dir/file now %q: truncated through the link", impl, b)
		}
		f, err = r.OpenFile("dlin-new", os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
		if !errors.Is(err, syscall.ELOOP) {
			t.Errorf("%s: OpenFile(dangling, O_CREATE|O_NOFOLLOW) = %v, want ELOOP", impl, err)
		}
		if f != nil {
			f.Close()
		}
		if _, err := os.Lstat(filepath.Join(root, "dir/created")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: dir/created exists: created through the link", impl)
		}
		if f, err := r.OpenFile("dir/file", os.O_RDONLY|syscall.O_NOFOLLOW, 0); err != nil {
			t.Errorf("%s: OpenFile(dir/file, O_NOFOLLOW) = %v", impl, err)
		} else {
			f.Close()
		}
		unchanged(t, outside)
	}
}

// The kernel's Root needs only search permission on its directory, as virtual(8) does;
// os.Root needs read permission too (the package doc says so). As root the check runs in
// a child process, a copy of this test binary, as uid and gid 5000.
func TestSearchOnlyBase(t *testing.T) {
	if base := os.Getenv("BENEATH_SEARCH_ONLY"); base != "" {
		searchOnlyChild(t, base)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the check runs as another uid")
	}
	top := t.TempDir()
	for _, d := range []string{top, filepath.Dir(top)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	base := filepath.Join(top, "base")
	if err := os.Mkdir(base, 0o711); err != nil {
		t.Fatal(err)
	}
	os.Chmod(base, 0o711)
	sub := filepath.Join(base, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(sub, "f"), "x")
	os.Chmod(filepath.Join(sub, "f"), 0)
	for _, p := range []string{sub, filepath.Join(sub, "f")} {
		if err := os.Chown(p, 5000, 5000); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(top, "beneath.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestSearchOnlyBase$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "BENEATH_SEARCH_ONLY="+base)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 5000, Gid: 5000}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestSearchOnlyBase") {
		t.Fatalf("child as uid 5000: %v\n%s", err, out)
	}
}

func searchOnlyChild(t *testing.T, base string) {
	if os.Geteuid() == 0 {
		t.Fatal("the child still runs as root")
	}
	if _, err := os.OpenRoot(base); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("os.OpenRoot of a search-only directory = %v, want a permission error", err)
	}
	r, err := Open(base)
	if !kernelBeneath() {
		if !errors.Is(err, fs.ErrPermission) {
			t.Errorf("os.Root fallback: Open = %v, want a permission error", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Open of a search-only directory: %v", err)
	}
	defer r.Close()
	if !r.Kernel() {
		t.Fatal("Open chose os.Root although the kernel has openat2")
	}
	// stat(2) needs no permission on the file itself either.
	if fi, err := r.Stat("sub/f"); err != nil || fi.Size() != 1 {
		t.Errorf("Stat(sub/f) = %v, %v", fi, err)
	}
	f, err := r.OpenFile("sub/new", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatalf("creating beneath a search-only root: %v", err)
	}
	f.Close()
}
