package cluster

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// fakeRoot is a repository root whose scripts print what the real ones would.
func fakeRoot(t *testing.T, nodeOut, imagesOut string, fail bool) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	rc := "0"
	if fail {
		rc = "3"
	}
	for name, out := range map[string]string{"node-image.sh": nodeOut, "build-image.sh": imagesOut} {
		script := "#!/bin/sh\necho progress >&2\nprintf '" + out + "'\nexit " + rc + "\n"
		if err := os.WriteFile(filepath.Join(root, "scripts", name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestNodeImage(t *testing.T) {
	t.Setenv("STAMPEDE_NODE_IMAGE", "")
	root := fakeRoot(t, "building...\\nstampede/node:v1.34.4-abc\\n\\n", "", false)
	if img, err := NodeImage(context.Background(), root, io.Discard); err != nil || img != "stampede/node:v1.34.4-abc" {
		t.Errorf("NodeImage = %q, %v; want the script's last line", img, err)
	}
	t.Setenv("STAMPEDE_NODE_IMAGE", "kindest/node:v1.34.4")
	if img, _ := NodeImage(context.Background(), root, io.Discard); img != "kindest/node:v1.34.4" {
		t.Errorf("STAMPEDE_NODE_IMAGE not honoured: %q", img)
	}
	t.Setenv("STAMPEDE_NODE_IMAGE", "")
	if _, err := NodeImage(context.Background(), fakeRoot(t, "", "", false), io.Discard); err == nil {
		t.Error("a script that printed nothing gave no error")
	}
	if _, err := NodeImage(context.Background(), fakeRoot(t, "x\\n", "", true), io.Discard); err == nil {
		t.Error("a failed script gave no error")
	}
}

func TestWorkloadImages(t *testing.T) {
	root := fakeRoot(t, "", "tokensvc=stampede/tokensvc:1\\npostgres=stampede/postgres:2\\ntoxiproxy=stampede/toxiproxy:3\\n", false)
	imgs, err := WorkloadImages(context.Background(), root, io.Discard)
	if err != nil || imgs["tokensvc"] != "stampede/tokensvc:1" || imgs["postgres"] != "stampede/postgres:2" || imgs["toxiproxy"] != "stampede/toxiproxy:3" {
		t.Errorf("WorkloadImages = %v, %v", imgs, err)
	}
}

// A target's recipe runs where it is told, its lines read as build-image.sh's; its image is
// found by repository, whatever NAME the recipe printed.
func TestRecipeImages(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "build.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho building >&2\necho \"orders=stampede/orders:$1-$(basename \"$PWD\")\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	imgs, err := RecipeImages(context.Background(), dir, io.Discard, script, "abc")
	want := "stampede/orders:abc-" + filepath.Base(dir)
	if err != nil || imgs["orders"] != want {
		t.Fatalf("RecipeImages = %v, %v; want orders=%s", imgs, err, want)
	}
	if got := ImageNamed(imgs, "stampede/orders"); got != want {
		t.Errorf("ImageNamed(stampede/orders) = %q, want %q", got, want)
	}
	for _, name := range []string{"stampede/order", "orders", "stampede/orders:abc"} {
		if got := ImageNamed(imgs, name); got != "" {
			t.Errorf("ImageNamed(%s) = %q, want none", name, got)
		}
	}
	if got := ImageNamed(map[string]string{"x": "localhost:5000/stampede/orders"}, "localhost"); got != "" {
		t.Errorf("a registry's port taken for a tag: %q", got)
	}
	if _, err := RecipeImages(context.Background(), dir, io.Discard, filepath.Join(dir, "missing.sh")); err == nil {
		t.Error("a missing recipe gave no error")
	}
}
