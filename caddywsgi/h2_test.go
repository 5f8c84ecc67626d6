package caddywsgi_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// TestClientCertificateEnviron: the client's certificate reaches the
// application in mod_ssl's variables. (caddyfile_examples/mtls verifies
// certificates against Caddy's CA; here any certificate is accepted.)
func TestClientCertificateEnviron(t *testing.T) {
	c := startCaddy(t, `https://localhost:{https_port} {
	tls internal {
		client_auth {
			mode request
		}
	}
	wsgi_script / {apps}/app.wsgi python={python}
}`)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	template := &x509.Certificate{SerialNumber: big.NewInt(0xC0FFEE), Subject: pkix.Name{CommonName: "alice", Organization: []string{"Shop"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	client := h2Client()
	client.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}
	t.Cleanup(client.CloseIdleConnections)
	res, body := get(t, client, "GET", c.HTTPSURL("/env"), nil)
	env := environOf(t, res, body)
	for k, v := range map[string]any{
		"SSL_CLIENT_VERIFY": "GENEROUS", "SSL_CLIENT_S_DN": "CN=alice,O=Shop", "SSL_CLIENT_I_DN": "CN=alice,O=Shop",
		"SSL_CLIENT_M_SERIAL": "C0FFEE",
		"SSL_CLIENT_CERT":     string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
	} {
		if env[k] != v {
			t.Errorf("%s = %#v, want %#v", k, env[k], v)
		}
	}
}

func TestHTTPSAndHTTP2(t *testing.T) {
	c := startCaddy(t, `https://localhost:{https_port} {
	tls internal
	wsgi_script /app {apps}/app.wsgi {
		python {python}
		processes 1
		threads 4
	}
}`)
	client := h2Client()
	t.Cleanup(client.CloseIdleConnections)

	res, body := get(t, client, "GET", c.HTTPSURL("/app/env?x=1"), nil)
	if res.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", res.Proto)
	}
	env := environOf(t, res, body)
	for k, v := range map[string]any{
		"HTTPS": "on", "wsgi.url_scheme": "https", "SERVER_PROTOCOL": "HTTP/2.0",
		"SCRIPT_NAME": "/app", "PATH_INFO": "/env", "QUERY_STRING": "x=1", "SERVER_NAME": "localhost",
		"SSL_PROTOCOL": "TLSv1.3", "SSL_TLS_SNI": "localhost", "SSL_CLIENT_VERIFY": "NONE",
	} {
		if env[k] != v {
			t.Errorf("%s = %#v, want %#v", k, env[k], v)
		}
	}

	res, body = get(t, client, "POST", c.HTTPSURL("/app/echo"), strings.NewReader("over h2"))
	if body != "over h2" {
		t.Errorf("POST: %d %q", res.StatusCode, body)
	}
	res, body = get(t, client, "POST", c.HTTPSURL("/app/echo"), chunked{strings.NewReader(strings.Repeat("y", 200_000))})
	if len(body) != 200_000 {
		t.Errorf("streamed POST: %d, %d bytes", res.StatusCode, len(body))
	}

	// Streaming: the first chunk arrives before the generator is released.
	stream, err := client.Get(c.HTTPSURL("/app/stream"))
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stream.Body)
	if line, err := r.ReadString('\n'); line != "first\n" {
		t.Fatalf("first chunk %q %v", line, err)
	}
	get(t, client, "GET", c.HTTPSURL("/app/release"), nil)
	if rest, err := io.ReadAll(r); string(rest) != "second\n" || err != nil {
		t.Errorf("rest of the stream: %q %v", rest, err)
	}
	stream.Body.Close()

	// A response that dies half way resets the stream.
	res, err = client.Get(c.HTTPSURL("/app/error-after"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err == nil || !strings.Contains(err.Error(), "stream error") {
		t.Errorf("aborted response over HTTP/2: read %q, error %v; want a stream reset", b, err)
	}
	// The connection and the worker survive it.
	if res, body = get(t, client, "GET", c.HTTPSURL("/app/pid"), nil); res.StatusCode != 200 || body == "" {
		t.Errorf("after the reset: %d %q", res.StatusCode, body)
	}
}

// TestHTTP3: the same application over HTTP/3 (QUIC), which Caddy serves on
// the HTTPS port's UDP side.
func TestHTTP3(t *testing.T) {
	// A finite grace period: after a stream reset, Caddy's HTTP/3 server
	// waits out an eternal one at shutdown even once the client has gone.
	c, err := launchCaddy(t, "admin off\n\tgrace_period 1s", `https://localhost:{https_port} {
	tls internal
	wsgi_script /app {apps}/app.wsgi {
		python {python}
		threads 2
	}
}`)
	if err != nil {
		t.Fatal(err)
	}
	transport := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}}
	t.Cleanup(func() { transport.Close() })
	client := &http.Client{Timeout: 30 * time.Second, Transport: transport}

	res, body := get(t, client, "GET", c.HTTPSURL("/app/env"), nil)
	if res.ProtoMajor != 3 {
		t.Fatalf("protocol %s, want HTTP/3", res.Proto)
	}
	env := environOf(t, res, body)
	if env["SERVER_PROTOCOL"] != "HTTP/3.0" || env["wsgi.url_scheme"] != "https" || env["PATH_INFO"] != "/env" {
		t.Errorf("environ over HTTP/3: SERVER_PROTOCOL %v, scheme %v, PATH_INFO %v", env["SERVER_PROTOCOL"], env["wsgi.url_scheme"], env["PATH_INFO"])
	}
	if _, body := get(t, client, "POST", c.HTTPSURL("/app/echo"), strings.NewReader("over h3")); body != "over h3" {
		t.Errorf("POST over HTTP/3: %q", body)
	}
	// A response that dies half way resets the stream: the client sees an
	// error reading the body, or from the request itself when the reset
	// overtakes the head.
	url := c.HTTPSURL("/app/error-after")
	start := time.Now()
	if res, err := client.Get(url); err == nil {
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err == nil {
			t.Errorf("aborted response over HTTP/3 read cleanly: %q", b)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the client learnt of the abort only after %v", took)
	}
}
