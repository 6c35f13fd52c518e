// Package localapi is the appliance's local API: HTTP over a unix socket
// that only the daemon's user can open. totpctl uses it to read the
// appliance's status and to add, list, rename and remove accounts for
// servers that are not totpbox (any site that shows an otpauth QR code or
// secret). Accounts added here are local: the registration server never
// sees or removes them, and this API does not remove the server's.
//
// Responses never carry a secret: an account is added with its secret and
// from then on only its name, issuer and state are shown.
package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll"
)

// Backend is what the API reads and changes.
type Backend struct {
	// Vault holds the accounts. Required.
	Vault *vault.Vault
	// Status returns the appliance's status (clock, link, screen) as any
	// JSON-encodable value. Nil means none.
	Status func() any
	// Pairing returns the pairing state as any JSON-encodable value. Nil
	// means the appliance is standalone.
	Pairing func() any
	// Changed is called after the accounts change, so the screen redraws.
	Changed func()
	// MigrateSecrets moves a software-mode vault into the TPM and returns
	// the new secrets status; its error is shown to the caller as it is.
	// Nil means the appliance cannot (404).
	MigrateSecrets func() (any, error)
	// Logger receives one line per change; nil means slog.Default().
	Logger *slog.Logger
}

// Account is an account as the API shows it: never its secret.
type Account struct {
	ID        string    `json:"id"`
	Issuer    string    `json:"issuer"`
	Label     string    `json:"label"`
	Account   string    `json:"account"`
	Name      string    `json:"name"`
	State     string    `json:"state"`
	Source    string    `json:"source"`
	Algorithm string    `json:"algorithm"`
	Digits    int       `json:"digits"`
	Period    int       `json:"period"`
	Created   time.Time `json:"created"`
	// InTPM: the secret is held in the TPM, which computes the codes.
	InTPM bool `json:"in_tpm"`
}

func fromVault(a vault.Account) Account {
	return Account{
		ID: a.ID, Issuer: a.Issuer, Label: a.Label, Account: a.Key.Account, Name: a.Name(),
		State: a.State.String(), Source: a.Source, Algorithm: a.Key.Algorithm.String(),
		Digits: a.Key.Digits, Period: int(a.Key.Period / time.Second), Created: a.Created,
		InTPM: a.InTPM,
	}
}

// AddRequest adds an account: either URI, or Secret with Issuer and Name
// (and optional parameters).
type AddRequest struct {
	URI       string `json:"uri,omitempty"`
	Secret    string `json:"secret,omitempty"`
	Issuer    string `json:"issuer,omitempty"`
	Name      string `json:"name,omitempty"`
	Label     string `json:"label,omitempty"`
	Algorithm string `json:"algorithm,omitempty"`
	Digits    int    `json:"digits,omitempty"`
	Period    int    `json:"period,omitempty"`
}

// key builds the key the request describes.
func (r AddRequest) key() (enroll.Key, error) {
	if r.URI != "" {
		if r.Secret != "" || r.Algorithm != "" || r.Digits != 0 || r.Period != 0 {
			return enroll.Key{}, errors.New("give either uri or secret with its parameters, not both")
		}
		return enroll.ParseURI(r.URI)
	}
	if r.Secret == "" {
		return enroll.Key{}, errors.New("missing uri or secret")
	}
	if r.Name == "" && r.Issuer == "" {
		return enroll.Key{}, errors.New("an account from a secret needs an issuer or a name")
	}
	secret, err := enroll.ParseSecret(r.Secret)
	if err != nil {
		return enroll.Key{}, err
	}
	k := enroll.Key{Issuer: r.Issuer, Account: r.Name, Secret: secret, Algorithm: enroll.SHA1, Digits: enroll.DefaultDigits, Period: enroll.DefaultPeriod}
	if r.Algorithm != "" {
		if k.Algorithm, err = enroll.ParseAlgorithm(r.Algorithm); err != nil {
			return enroll.Key{}, err
		}
	}
	if r.Digits != 0 {
		k.Digits = r.Digits
	}
	if r.Period != 0 {
		k.Period = time.Duration(r.Period) * time.Second
	}
	return k, k.Validate()
}

// RenameRequest renames an account.
type RenameRequest struct {
	Label string `json:"label"`
}

// Handler returns the API's routes:
//
//	GET    /v1/status
//	GET    /v1/pairing
//	GET    /v1/accounts
//	POST   /v1/accounts          AddRequest -> 201 Account
//	PATCH  /v1/accounts/{id}     RenameRequest -> Account
//	DELETE /v1/accounts/{id}     local accounts only
//	POST   /v1/secrets/migrate   move a software-mode vault into the TPM
func (b *Backend) Handler() http.Handler {
	if b.Logger == nil {
		b.Logger = slog.Default()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		var st any = map[string]any{}
		if b.Status != nil {
			st = b.Status()
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /v1/pairing", func(w http.ResponseWriter, r *http.Request) {
		if b.Pairing == nil {
			writeJSON(w, http.StatusOK, map[string]any{"standalone": true})
			return
		}
		writeJSON(w, http.StatusOK, b.Pairing())
	})
	mux.HandleFunc("GET /v1/accounts", b.list)
	mux.HandleFunc("POST /v1/accounts", b.add)
	mux.HandleFunc("PATCH /v1/accounts/{id}", b.rename)
	mux.HandleFunc("DELETE /v1/accounts/{id}", b.remove)
	mux.HandleFunc("POST /v1/secrets/migrate", func(w http.ResponseWriter, r *http.Request) {
		if b.MigrateSecrets == nil {
			writeError(w, http.StatusNotFound, "this appliance cannot move its secrets")
			return
		}
		st, err := b.MigrateSecrets()
		if err != nil {
			writeError(w, http.StatusConflict, oneLine(err.Error()))
			return
		}
		b.Logger.Info("secrets moved into the TPM")
		b.changed()
		writeJSON(w, http.StatusOK, st)
	})
	return mux
}

func (b *Backend) list(w http.ResponseWriter, _ *http.Request) {
	accts := b.Vault.List()
	out := make([]Account, len(accts))
	for i, a := range accts {
		out[i] = fromVault(a)
	}
	writeJSON(w, http.StatusOK, out)
}

func (b *Backend) add(w http.ResponseWriter, r *http.Request) {
	var req AddRequest
	if !decode(w, r, &req) {
		return
	}
	k, err := req.key()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	a, err := b.Vault.Add(vault.Account{Issuer: k.Issuer, Label: req.Label, Key: k, State: vault.Active, Source: vault.SourceLocal})
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	b.Logger.Info("account added", "account", a)
	b.changed()
	writeJSON(w, http.StatusCreated, fromVault(a))
}

func (b *Backend) rename(w http.ResponseWriter, r *http.Request) {
	var req RenameRequest
	if !decode(w, r, &req) {
		return
	}
	id := r.PathValue("id")
	if !b.local(w, id) {
		return
	}
	a, err := b.Vault.Rename(id, strings.TrimSpace(req.Label))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	b.changed()
	writeJSON(w, http.StatusOK, fromVault(a))
}

func (b *Backend) remove(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !b.local(w, id) {
		return
	}
	if err := b.Vault.Remove(id); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	b.Logger.Info("account removed", "id", id)
	b.changed()
	w.WriteHeader(http.StatusNoContent)
}

// local reports whether id is a local account, answering the request when
// it is not.
func (b *Backend) local(w http.ResponseWriter, id string) bool {
	a, err := b.Vault.Get(id)
	if errors.Is(err, vault.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no account %q", id))
		return false
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return false
	}
	if !a.IsLocal() {
		writeError(w, http.StatusConflict, fmt.Sprintf("account %q belongs to the registration server; rename or delete it in the console", id))
		return false
	}
	return true
}

func (b *Backend) changed() {
	if b.Changed != nil {
		b.Changed()
	}
}

const maxBody = 64 << 10

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "malformed JSON body: "+oneLine(err.Error()))
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "malformed JSON body: more than one value")
		return false
	}
	return true
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

// CheckSocketDir reports whether the directory of the socket at path keeps
// other local users out. One that group or others may write (sticky or
// not) lets them bind the path before the daemon does, squatting it, and
// take what totpctl sends. A directory that does not exist yet is checked
// through its nearest existing parent, where another user could create it
// first. The error is one line naming the directory, its mode and the fix.
func CheckSocketDir(path string) error {
	dir := filepath.Dir(filepath.Clean(path))
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if errors.Is(err, fs.ErrNotExist) && d != filepath.Dir(d) {
			continue
		}
		if err != nil {
			return fmt.Errorf("socket directory: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("socket directory: %s is not a directory", d)
		}
		if fi.Mode().Perm()&0o022 == 0 {
			return nil
		}
		if d == dir {
			return fmt.Errorf("socket directory %s (mode %04o) is writable by group or others, who could bind %s before totpd: run chmod go-w %s, or put the socket in a directory only totpd's user can write (the default is <state_dir>/totpd.sock)",
				d, octalMode(fi.Mode()), path, d)
		}
		return fmt.Errorf("socket directory %s does not exist and %s (mode %04o) is writable by group or others, who could create it first: create %s (mode 0700, owned by totpd's user), or put the socket in a directory only totpd's user can write",
			dir, d, octalMode(fi.Mode()), dir)
	}
}

// octalMode is m as chmod writes it, the sticky bit included.
func octalMode(m fs.FileMode) fs.FileMode {
	if m&fs.ModeSticky != 0 {
		return m.Perm() | 0o1000
	}
	return m.Perm()
}

// Listen opens the unix socket at path for the owner only: its directory
// is made 0700 if new, a stale socket is replaced, and the socket is 0600.
// It refuses a directory others may write (see CheckSocketDir) or one
// owned by a user other than root or the caller.
func Listen(path string) (net.Listener, error) {
	if err := CheckSocketDir(path); err != nil {
		return nil, fmt.Errorf("local API socket: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("local API socket: %w", err)
	}
	if err := checkDirOwner(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("local API socket: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("local API socket: %s exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("local API socket: %s is in use by another daemon", path)
		}
		os.Remove(path)
	}
	old := umask(0o177)
	ln, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, fmt.Errorf("local API socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("local API socket: %w", err)
	}
	return ln, nil
}

// Serve serves the API on ln until ctx is done.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Client talks to the local API over its socket. It sends nothing to a
// socket served by a user it does not trust: on every new connection it
// asks the kernel (SO_PEERCRED) which user the listening process runs as,
// so a local user who bound the socket's path first (squatting it) gets
// neither a request nor a secret.
type Client struct {
	http    *http.Client
	path    string
	trusted []int
}

// NewClient returns a client for the socket at path that trusts root and
// the calling user (a daemon started by the same user, as in tests and
// the simulator).
func NewClient(path string) *Client {
	return NewClientTrusting(path, []int{0, os.Geteuid()})
}

// NewClientTrusting returns a client for the socket at path that talks
// only to a listener running as one of the user ids trusted: see
// TrustedUIDs. An empty list trusts nobody.
func NewClientTrusting(path string, trusted []int) *Client {
	trusted = slices.Clone(trusted)
	slices.Sort(trusted)
	c := &Client{path: path, trusted: slices.Compact(trusted)}
	c.http = &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "unix", path)
			if err != nil {
				return nil, err
			}
			if err := c.checkPeer(conn); err != nil {
				conn.Close()
				return nil, err
			}
			return conn, nil
		}},
	}
	return c
}

// checkPeer returns a *PeerError unless conn's listener runs as a trusted
// user.
func (c *Client) checkPeer(conn net.Conn) error {
	uid, err := peerUID(conn)
	if err != nil {
		return &PeerError{Path: c.path, UID: -1, Err: err}
	}
	if !slices.Contains(c.trusted, uid) {
		return &PeerError{Path: c.path, UID: uid, Trusted: c.trusted}
	}
	return nil
}

// DefaultDaemonUser is the user the packaged totpd runs as (User= in
// totpd.service, and what totpd becomes when started as root).
const DefaultDaemonUser = "totpbox"

// TrustedUIDs returns the users a client may trust to be totpd: root, the
// calling user, and daemonUser (a name or a numeric uid; empty means
// DefaultDaemonUser, left out where no such user exists). A totpd that runs
// as someone else, such as its own uid on gokrazy, must be named. A name
// given explicitly that does not exist is an error, and so is nobody
// (NobodyUID), which other services share.
func TrustedUIDs(daemonUser string) ([]int, error) {
	uids := []int{0, os.Geteuid()}
	name := daemonUser
	if name == "" {
		name = DefaultDaemonUser
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return sharedCheck(name, append(uids, n))
	}
	u, err := user.Lookup(name)
	if err != nil {
		if daemonUser == "" {
			return uids, nil
		}
		return nil, fmt.Errorf("daemon user %q: no such user", name)
	}
	n, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("daemon user %q: uid %q is not a number", name, u.Uid)
	}
	return sharedCheck(name, append(uids, n))
}

// NobodyUID is the user id of nobody, which many services share.
const NobodyUID = 65534

// sharedCheck refuses a daemon user that other services share (nobody):
// any of them could bind totpd's socket path first and be sent what
// totpctl sends, secrets included. uids ends with the daemon user's.
func sharedCheck(name string, uids []int) ([]int, error) {
	if uids[len(uids)-1] == NobodyUID {
		return nil, fmt.Errorf("daemon user %q is uid %d (nobody), which other services share: any of them could answer on the socket; run totpd as a user of its own (run_as) and name that", name, NobodyUID)
	}
	return uids, nil
}

// PeerError means the socket is served by a process the client does not
// trust, or one it could not identify: someone else may have bound the
// daemon's socket path. Nothing was sent to it.
type PeerError struct {
	// Path is the socket.
	Path string
	// UID is the listening process's user id; -1 when unknown (see Err).
	UID int
	// Trusted are the user ids the client accepts.
	Trusted []int
	// Err is why the peer could not be identified, if it could not.
	Err error
}

func (e *PeerError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("refusing to talk to %s: cannot tell which user serves it (%s); nothing sent", e.Path, oneLine(e.Err.Error()))
	}
	ids := make([]string, len(e.Trusted))
	for i, u := range e.Trusted {
		ids[i] = strconv.Itoa(u)
	}
	return fmt.Sprintf("refusing to talk to %s: it is served by uid %d, not root or totpd's user (trusted uids %s); another user may have bound the socket's path first, nothing sent",
		e.Path, e.UID, strings.Join(ids, ", "))
}

func (e *PeerError) Unwrap() error { return e.Err }

// Do sends a request with body in (nil for none) and decodes the answer
// into out (nil to discard). An error answer becomes an error holding the
// API's one-line message.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://totpd"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if pe := (*PeerError)(nil); errors.As(err, &pe) {
		return pe
	}
	if err != nil {
		return &UnreachableError{Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e apiError
		if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return &StatusError{Code: resp.StatusCode, Msg: e.Error}
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// StatusError is an error answer of the API.
type StatusError struct {
	Code int
	Msg  string
}

func (e *StatusError) Error() string { return e.Msg }

// UnreachableError means the daemon could not be reached.
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string {
	return "cannot reach totpd (is it running, and may you open its socket?): " + oneLine(e.Err.Error())
}

func (e *UnreachableError) Unwrap() error { return e.Err }
