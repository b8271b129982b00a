package rootonly

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestTableFiles(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"v", "v.db", "c.cdb", "r"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	for _, tc := range []struct {
		spec      string
		files     []string
		directory string
	}{
		{"hash:" + dir + "/v", []string{dir + "/v", dir + "/v.db"}, dir},
		{"hash:v", []string{dir + "/v", dir + "/v.db"}, dir}, // relative: the working directory
		{"proxy:cdb:" + dir + "/c", []string{dir + "/c.cdb"}, dir},
		{"regexp:" + dir + "/missing", nil, dir},
		{"static:5000", nil, ""},
		{"inline:{a=b}", nil, ""},
		{"union:{static:1, regexp:" + dir + "/r}", []string{dir + "/r", dir}, ""},
		{"no-colon", nil, ""},
	} {
		files, d := TableFiles(tc.spec)
		if !slices.Equal(files, tc.files) || d != tc.directory {
			t.Errorf("TableFiles(%q) = %q, %q; want %q, %q", tc.spec, files, d, tc.files, tc.directory)
		}
	}
}

func TestCheckRefusesOthers(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := Check(f, false); err == nil {
		t.Fatalf("Check(%s, mode 0666) = nil", f)
	}
	if err := Check("relative", true); err == nil {
		t.Fatal("Check of a missing relative path = nil")
	}
}

// A /file of a list brings in what it lists, nested, each under the outermost item.
func TestListFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("t", "example.com x\n")
	write("inner", "# nested\ntexthash:"+dir+"/t\n")
	write("outer", "example.net\n"+dir+"/inner\n")
	got := ListFiles("example.org, " + dir + "/outer, !static:x")
	want := []Item{{dir + "/outer", dir + "/outer"}, {dir + "/outer", dir + "/inner"}, {dir + "/outer", dir}, {dir + "/outer", dir + "/t"}}
	if !slices.Equal(got, want) {
		t.Fatalf("ListFiles = %q\nwant %q", got, want)
	}
}
