package caddywsgi_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
)

const gib = 1 << 30

// pattern is the byte stream the test app's /download produces: 0..255 repeated.
type pattern struct{ off int64 }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(p.off + int64(i))
	}
	p.off += int64(len(b))
	return len(b), nil
}

const transferSite = `:{http_port} {
	wsgi_script / {apps}/app.wsgi {
		python {python}
		processes 1
		threads 2
	}
}`

func caddyPID(c *caddy) int { return c.cmd.Process.Pid }

func TestGigabyteUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB transfer")
	}
	c := startCaddy(t, transferSite)
	want := sha256.New()
	body := io.TeeReader(io.LimitReader(&pattern{}, gib), want)
	req, _ := http.NewRequest("POST", c.URL("/echo-digest"), body)
	req.ContentLength = gib
	res, err := plainClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Size int64  `json:"size"`
		SHA  string `json:"sha256"`
		PID  int    `json:"pid"`
	}
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil || res.StatusCode != 200 {
		t.Fatalf("%d %v", res.StatusCode, err)
	}
	res.Body.Close()
	if got.Size != gib || got.SHA != hex.EncodeToString(want.Sum(nil)) {
		t.Fatalf("worker received %d bytes with sha256 %s", got.Size, got.SHA)
	}
	checkMemory(t, c, got.PID)
}

func TestGigabyteDownload(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB transfer")
	}
	c := startCaddy(t, transferSite)
	res, err := plainClient.Get(c.URL(fmt.Sprintf("/download?size=%d", gib)))
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, res.Body)
	res.Body.Close()
	if err != nil || n != gib {
		t.Fatalf("downloaded %d bytes: %v", n, err)
	}
	want := sha256.New()
	io.Copy(want, io.LimitReader(&pattern{}, gib))
	if hex.EncodeToString(got.Sum(nil)) != hex.EncodeToString(want.Sum(nil)) {
		t.Fatal("the downloaded bytes differ from what the app sent")
	}
	_, pid := get(t, plainClient, "GET", c.URL("/pid"), nil)
	workerPID, _ := strconv.Atoi(pid)
	checkMemory(t, c, workerPID)
}

// TestFileWrapperSendsDescriptor: a 1 GiB wsgi.file_wrapper response reaches
// the client while the worker writes almost nothing: Caddy sends the file
// from the descriptor the worker passed.
func TestFileWrapperSendsDescriptor(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB transfer")
	}
	c := startCaddy(t, transferSite)
	path := t.TempDir() + "/sparse.bin"
	f, _ := os.Create(path)
	f.Truncate(gib)
	f.Close()
	_, pid := get(t, plainClient, "GET", c.URL("/pid"), nil)
	workerPID, _ := strconv.Atoi(pid)
	before := bytesWritten(t, workerPID)

	res, err := plainClient.Get(c.URL("/file?path=" + path))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err != nil || n != gib || res.ContentLength != gib {
		t.Fatalf("got %d bytes (Content-Length %d): %v", n, res.ContentLength, err)
	}
	if written := bytesWritten(t, workerPID) - before; written > 1<<20 {
		t.Errorf("the worker wrote %d bytes for a 1 GiB file: the file went through the socket", written)
	}
	checkMemory(t, c, workerPID)
}

// bytesWritten is the total a process has passed to write-like system calls.
func bytesWritten(t *testing.T, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no wchar in /proc/pid/io")
	return 0
}

// checkMemory: after a 1 GiB transfer neither process ever held more than a
// small fraction of it.
func checkMemory(t *testing.T, c *caddy, workerPID int) {
	const workerLimit, caddyLimit = 64 << 20, 160 << 20
	if rss := peakRSS(t, workerPID); rss > workerLimit {
		t.Errorf("worker peak RSS %d MiB, want under %d MiB", rss>>20, workerLimit>>20)
	} else {
		t.Logf("worker peak RSS %d MiB", rss>>20)
	}
	if rss := peakRSS(t, caddyPID(c)); rss > caddyLimit {
		t.Errorf("caddy peak RSS %d MiB, want under %d MiB", rss>>20, caddyLimit>>20)
	} else {
		t.Logf("caddy peak RSS %d MiB", rss>>20)
	}
}
