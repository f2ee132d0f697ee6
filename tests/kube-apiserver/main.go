// Command harness runs real kube-apiservers on loopback for gitfleet's
// integration tests.
//
//	harness --members member1,member2 --kubeconfig FILE [--timeout 3m] [--log-dir DIR]
//
// The parent process runs one embedded etcd (127.0.0.1, free ports, data in a
// temporary directory) and starts one kube-apiserver per member by
// re-executing its own binary with the hidden subcommand "apiserver"; each
// member gets its own 127.0.0.1 port and its own etcd prefix
// (/registry-NAME), so the members share nothing but the etcd process.
// Several apiservers in one process would clash on global state (flags,
// metrics registries), hence one child process each.
//
// Once every member answers GET /readyz, the parent writes one kubeconfig
// with a cluster, user and context per member (context name = member name)
// and prints the single line "ready" on stdout. Everything else goes to
// stderr. On SIGTERM or SIGINT it stops the apiservers and etcd, removes its
// temporary directory and exits 0.
package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	clientcmd "k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

const apiserverSubcommand = "apiserver"

func main() {
	if len(os.Args) > 1 && os.Args[1] == apiserverSubcommand {
		// Child: a plain kube-apiserver with the arguments the parent chose.
		cmd := app.NewAPIServerCommand()
		cmd.SetArgs(os.Args[2:])
		os.Exit(cli.Run(cmd))
	}
	os.Exit(runParent(os.Args[1:]))
}

var memberName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "harness: "+format+"\n", args...)
}

type member struct {
	name    string
	port    int
	token   string
	logPath string
	args    []string // the kube-apiserver command line, reused by "start"
	dir     string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the child has exited
	waitErr error
	stopped bool // stopped on request ("stop NAME"), not a crash
}

func runParent(argv []string) int {
	fs := flag.NewFlagSet("harness", flag.ContinueOnError)
	membersFlag := fs.String("members", "", "comma-separated member cluster names (required)")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file to write (required)")
	timeout := fs.Duration("timeout", 3*time.Minute, "how long to wait for every apiserver to become ready")
	logDir := fs.String("log-dir", "", "keep etcd and apiserver logs in this directory (default: inside the temporary directory, removed on exit)")
	control := fs.Bool("control", false, "read \"stop NAME\" / \"start NAME\" from stdin, and stop everything when stdin closes (the caller went away)")
	if err := fs.Parse(argv); err != nil {
		return 2
	}
	if *membersFlag == "" || *kubeconfig == "" || fs.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: harness --members a,b,c --kubeconfig FILE [--timeout 3m] [--log-dir DIR] [--control]")
		return 2
	}
	var names []string
	seen := map[string]bool{}
	for _, n := range strings.Split(*membersFlag, ",") {
		n = strings.TrimSpace(n)
		if !memberName.MatchString(n) {
			logf("invalid member name %q (lowercase letters, digits and '-')", n)
			return 2
		}
		if seen[n] {
			logf("member %q given twice", n)
			return 2
		}
		seen[n] = true
		names = append(names, n)
	}

	// Signals are caught from the start so that a SIGTERM during startup
	// still cleans up.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	removeStaleTempDirs()
	tmp, err := os.MkdirTemp("", tempPrefix)
	if err != nil {
		logf("%v", err)
		return 1
	}
	if err := os.WriteFile(filepath.Join(tmp, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		logf("%v", err)
		return 1
	}
	h := &harness{tmp: tmp, logDir: *logDir, crashed: make(chan *member, 1)}
	if h.logDir == "" {
		h.logDir = filepath.Join(tmp, "logs")
	}
	defer h.cleanup()

	ready := make(chan error, 1)
	go func() { ready <- h.start(names, *kubeconfig, *timeout) }()

	select {
	case sig := <-sigs:
		logf("got %v during startup, stopping", sig)
		return 0
	case err := <-ready:
		if err != nil {
			logf("startup failed: %v", err)
			return 1
		}
	}
	fmt.Println("ready")
	stdinClosed := make(chan struct{})
	if *control {
		go func() {
			h.control(os.Stdin, os.Stdout)
			close(stdinClosed)
		}()
	}

	select {
	case sig := <-sigs:
		logf("got %v, stopping", sig)
		return 0
	case <-stdinClosed:
		logf("stdin closed, stopping")
		return 0
	case m := <-h.crashed:
		logf("apiserver %s exited unexpectedly (%v); log %s:\n%s", m.name, m.waitErr, m.logPath, tail(m.logPath, 40))
		return 1
	case err := <-h.etcdErr():
		logf("etcd failed: %v", err)
		return 1
	}
}

const tempPrefix = "gitfleet-kube-apiserver-"

// removeStaleTempDirs removes the temporary directories of harnesses that
// were killed without a chance to clean up (SIGKILL); their apiservers died
// with them (Pdeathsig).
func removeStaleTempDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			if os.RemoveAll(d) == nil {
				logf("removed stale %s", d)
			}
		}
	}
}

type harness struct {
	tmp, logDir string
	etcd        *embed.Etcd
	etcdLog     *os.File

	client  *http.Client
	crashed chan *member // members whose apiserver exited without being asked to

	mu      sync.Mutex
	members []*member
}

func (h *harness) start(names []string, kubeconfigPath string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if err := os.MkdirAll(h.logDir, 0o755); err != nil {
		return err
	}
	pki := filepath.Join(h.tmp, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return err
	}
	caPEM, err := writeCerts(pki)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}

	etcdURL, err := h.startEtcd()
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	logf("etcd ready at %s", etcdURL)

	for _, name := range names {
		port, err := freePort()
		if err != nil {
			return err
		}
		m := &member{name: name, port: port, token: randomHex(24), exited: make(chan struct{}),
			logPath: filepath.Join(h.logDir, "kube-apiserver-"+name+".log")}
		dir := filepath.Join(h.tmp, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		tokenFile := filepath.Join(dir, "tokens.csv")
		if err := os.WriteFile(tokenFile, []byte(m.token+",admin,admin,system:masters\n"), 0o600); err != nil {
			return err
		}
		args := []string{
			apiserverSubcommand,
			"--etcd-servers=" + etcdURL,
			"--etcd-prefix=/registry-" + name,
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			fmt.Sprintf("--secure-port=%d", port),
			"--cert-dir=" + dir,
			"--tls-cert-file=" + filepath.Join(pki, "serving.crt"),
			"--tls-private-key-file=" + filepath.Join(pki, "serving.key"),
			"--client-ca-file=" + filepath.Join(pki, "ca.crt"),
			"--token-auth-file=" + tokenFile,
			"--authorization-mode=RBAC",
			"--service-account-issuer=https://kubernetes.default.svc." + name,
			"--service-account-key-file=" + filepath.Join(pki, "sa.pub"),
			"--service-account-signing-key-file=" + filepath.Join(pki, "sa.key"),
			"--service-cluster-ip-range=10.0.0.0/24",
			// No controller-manager runs, so nothing creates the default
			// ServiceAccount that this plugin would insist on for pods.
			"--disable-admission-plugins=ServiceAccount",
			"--allow-privileged=true",
			// Keep three apiservers light on a small machine.
			"--enable-priority-and-fairness=false",
			"--profiling=false",
			"--shutdown-delay-duration=0s",
			"--endpoint-reconciler-type=none",
		}
		m.args = args
		m.dir = dir
		if err := h.launch(m, os.O_TRUNC); err != nil {
			return err
		}
		h.mu.Lock()
		h.members = append(h.members, m)
		h.mu.Unlock()
		logf("apiserver %s starting on https://127.0.0.1:%d (pid %d, log %s)", name, port, m.cmd.Process.Pid, m.logPath)
	}

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	h.client = &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	for _, m := range h.snapshot() {
		if err := waitReady(h.client, m, deadline); err != nil {
			return err
		}
		logf("apiserver %s ready", m.name)
	}

	return writeKubeconfig(kubeconfigPath, h.snapshot(), caPEM)
}

func (h *harness) snapshot() []*member {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*member(nil), h.members...)
}

func waitReady(client *http.Client, m *member, deadline time.Time) error {
	u := fmt.Sprintf("https://127.0.0.1:%d/readyz", m.port)
	var last string
	for {
		select {
		case <-m.exited:
			return fmt.Errorf("apiserver %s exited during startup (%v); log %s:\n%s", m.name, m.waitErr, m.logPath, tail(m.logPath, 40))
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+m.token)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("apiserver %s not ready in time; last answer: %s; log %s:\n%s", m.name, last, m.logPath, tail(m.logPath, 40))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// launch starts (or restarts) a member's kube-apiserver child process.
func (h *harness) launch(m *member, truncate int) error {
	logFile, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND|truncate, 0o644)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		logFile.Close()
		return err
	}
	cmd := exec.Command(self, m.args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Dir = m.dir
	// If the harness dies without cleaning up, take the children along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start apiserver %s: %w", m.name, err)
	}
	exited := make(chan struct{})
	h.mu.Lock()
	m.cmd, m.exited, m.stopped = cmd, exited, false
	h.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logFile.Close()
		h.mu.Lock()
		m.waitErr = err
		deliberate := m.stopped
		h.mu.Unlock()
		close(exited)
		if !deliberate {
			select {
			case h.crashed <- m:
			default:
			}
		}
	}()
	return nil
}

// control serves "stop NAME" and "start NAME" lines from in, so that tests
// can take one member's apiserver down and bring it back on the same port,
// certificates and etcd data. Each command answers one line on out:
// "stopped NAME", "started NAME" or "error: ...".
func (h *harness) control(in io.Reader, out io.Writer) {
	lines := bufio.NewScanner(in)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) != 2 {
			fmt.Fprintf(out, "error: expected \"stop NAME\" or \"start NAME\"\n")
			continue
		}
		var m *member
		for _, c := range h.snapshot() {
			if c.name == fields[1] {
				m = c
			}
		}
		if m == nil {
			fmt.Fprintf(out, "error: no member %s\n", fields[1])
			continue
		}
		h.mu.Lock()
		running := !m.stopped
		exited := m.exited
		h.mu.Unlock()
		switch fields[0] {
		case "stop":
			if running {
				h.mu.Lock()
				m.stopped = true
				h.mu.Unlock()
				_ = m.cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-exited:
				case <-time.After(10 * time.Second):
					_ = m.cmd.Process.Kill()
					<-exited
				}
			}
			logf("apiserver %s stopped on request", m.name)
			fmt.Fprintf(out, "stopped %s\n", m.name)
		case "start":
			if !running {
				if err := h.launch(m, 0); err != nil {
					fmt.Fprintf(out, "error: %v\n", err)
					continue
				}
				if err := waitReady(h.client, m, time.Now().Add(2*time.Minute)); err != nil {
					fmt.Fprintf(out, "error: %v\n", err)
					continue
				}
			}
			logf("apiserver %s started again on port %d", m.name, m.port)
			fmt.Fprintf(out, "started %s\n", m.name)
		default:
			fmt.Fprintf(out, "error: unknown command %q\n", fields[0])
		}
	}
}

func (h *harness) etcdErr() <-chan error {
	if h.etcd == nil {
		return nil
	}
	return h.etcd.Err()
}

func (h *harness) startEtcd() (string, error) {
	clientPort, err := freePort()
	if err != nil {
		return "", err
	}
	peerPort, err := freePort()
	if err != nil {
		return "", err
	}
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", clientPort)}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", peerPort)}

	cfg := embed.NewConfig()
	cfg.Name = "harness"
	cfg.Dir = filepath.Join(h.tmp, "etcd")
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.UnsafeNoFsync = true // throwaway data
	// NewConfig leaves this at 0, which logs every request as "expensive".
	cfg.WarningUnaryRequestDuration = embed.DefaultWarningUnaryRequestDuration
	cfg.Logger = "zap"
	cfg.LogLevel = "warn"
	cfg.LogOutputs = []string{filepath.Join(h.logDir, "etcd.log")}

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return "", err
	}
	h.etcd = e
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		return "", errors.New("etcd not ready after 60s")
	case err := <-e.Err():
		return "", err
	}
	return clientURL.String(), nil
}

func (h *harness) cleanup() {
	// Read each member's current process under the lock (a "start" may have
	// replaced it) and mark it stopped so that its exit is not a crash.
	type proc struct {
		name   string
		cmd    *exec.Cmd
		exited chan struct{}
	}
	var procs []proc
	h.mu.Lock()
	for _, m := range h.members {
		m.stopped = true
		if m.cmd != nil && m.cmd.Process != nil {
			procs = append(procs, proc{m.name, m.cmd, m.exited})
		}
	}
	h.mu.Unlock()
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			logf("apiserver %s did not stop after SIGTERM, killing it", p.name)
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	if h.etcd != nil {
		done := make(chan struct{})
		go func() { h.etcd.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			logf("etcd did not stop in 20s")
		}
	}
	if err := os.RemoveAll(h.tmp); err != nil {
		logf("remove %s: %v", h.tmp, err)
	}
	logf("stopped")
}

func writeKubeconfig(path string, members []*member, caPEM []byte) error {
	cfg := clientcmdapi.NewConfig()
	for _, m := range members {
		cfg.Clusters[m.name] = &clientcmdapi.Cluster{
			Server:                   fmt.Sprintf("https://127.0.0.1:%d", m.port),
			CertificateAuthorityData: caPEM,
		}
		cfg.AuthInfos[m.name] = &clientcmdapi.AuthInfo{Token: m.token}
		cfg.Contexts[m.name] = &clientcmdapi.Context{Cluster: m.name, AuthInfo: m.name}
	}
	cfg.CurrentContext = members[0].name
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return err
	}
	tmp := abs + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, abs)
}

// writeCerts writes into dir a self-signed CA (ca.crt), a serving
// certificate for 127.0.0.1/localhost signed by it (serving.crt/.key) and a
// service-account key pair (sa.key/sa.pub). It returns the CA in PEM.
func writeCerts(dir string) ([]byte, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "gitfleet-test-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}

	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")},
		DNSNames:     []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	srvKeyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		return nil, err
	}

	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}

	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	files := map[string][]byte{
		"ca.crt":      caPEM,
		"serving.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
		"serving.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: srvKeyDER}),
		"sa.key":      pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}),
		"sa.pub":      pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	return caPEM, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}

func randomHex(nbytes int) string {
	b := make([]byte, nbytes)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// freePort asks the kernel for a free port on 127.0.0.1. Another process
// could take it before it is used; on loopback in a test run that is rare.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
