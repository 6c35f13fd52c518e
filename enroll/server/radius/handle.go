package radius

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/totpbox/totpbox/enroll/server/core"
)

// Results of a request, the values of the "result" label of
// totpserver_radius_requests_total. Every one but accept and challenge is
// an Access-Reject.
const (
	resultAccept      = "accept"
	resultChallenge   = "challenge"
	resultInvalid     = "invalid"
	resultReplay      = "replay"
	resultLocked      = "locked"
	resultRateLimited = "rate_limited"
	resultNoDevice    = "no_device"
	resultDisabled    = "disabled"
	resultUnknownUser = "unknown_user"
	resultBadPassword = "bad_password"
	resultBadState    = "bad_state"
	resultBadRequest  = "bad_request"
)

var allResults = []string{resultAccept, resultChallenge, resultInvalid, resultReplay, resultLocked, resultRateLimited,
	resultNoDevice, resultDisabled, resultUnknownUser, resultBadPassword, resultBadState, resultBadRequest}

// Reasons a request is dropped without an answer, the values of the
// "reason" label of totpserver_radius_dropped_total.
const (
	dropUnknownClient = "unknown_client"
	dropMalformed     = "malformed"
	dropNotAccess     = "not_access_request"
	dropNoMA          = "no_message_authenticator"
	dropBadMA         = "bad_message_authenticator"
	dropError         = "error"
)

var allDrops = []string{dropMalformed, dropNotAccess, dropNoMA, dropBadMA, dropError}

// unknownClient is the "client" label of requests from no client's range.
const unknownClient = "unknown"

// retransmitWait is how long a retransmission waits for the first copy's
// answer before it is dropped (the NAS will send again).
const retransmitWait = 5 * time.Second

// handle answers one datagram from addr, or drops it.
func (s *Server) handle(ctx context.Context, pc net.PacketConn, raw []byte, addr net.Addr) {
	src := addrPort(addr)
	c := s.client(src.Addr())
	if c == nil {
		s.metrics.dropped(unknownClient, dropUnknownClient)
		s.log.Debug("RADIUS request from unknown address dropped", "from", src.String())
		return
	}
	p, err := radius.Parse(raw, c.Secret)
	if err != nil {
		s.drop(c, src, dropMalformed, err)
		return
	}
	if p.Code != radius.CodeAccessRequest {
		s.drop(c, src, dropNotAccess, errors.New(p.Code.String()))
		return
	}
	switch err := checkMessageAuthenticator(raw, c.Secret); {
	case errors.Is(err, errNoMessageAuthenticator) && c.AllowMissingMessageAuthenticator:
	case errors.Is(err, errNoMessageAuthenticator):
		s.drop(c, src, dropNoMA, err)
		return
	case err != nil:
		s.drop(c, src, dropBadMA, err)
		return
	}
	key := replyKey(src, p)
	entry, first := s.replies.begin(key, s.clock.Now())
	if !first {
		s.metrics.retransmit(c.Name)
		select {
		case <-entry.done:
		case <-time.After(retransmitWait):
			return
		}
		if entry.reply != nil {
			pc.WriteTo(entry.reply, addr)
		}
		return
	}
	reply, result, err := s.decide(ctx, c, p, src.Addr())
	if err != nil {
		s.replies.abandon(key, entry)
		s.drop(c, src, dropError, err)
		return
	}
	for _, ps := range p.Attributes {
		if ps.Type == rfc2865.ProxyState_Type {
			reply.Attributes.Add(rfc2865.ProxyState_Type, ps.Attribute)
		}
	}
	b, err := encodeReply(reply)
	if err != nil {
		s.replies.abandon(key, entry)
		s.drop(c, src, dropError, err)
		return
	}
	s.replies.finish(entry, b)
	s.metrics.request(c.Name, result)
	if _, err := pc.WriteTo(b, addr); err != nil {
		s.log.Warn("RADIUS reply not sent", "client", c.Name, "to", src.String(), "err", err)
	}
}

// drop counts and logs a request dropped without an answer. err never
// holds a secret.
func (s *Server) drop(c *Client, src netip.AddrPort, reason string, err error) {
	s.metrics.dropped(c.Name, reason)
	lvl := s.log.Debug
	if reason == dropError {
		lvl = s.log.Error
	}
	lvl("RADIUS request dropped", "client", c.Name, "from", src.String(), "reason", reason, "err", err)
}

// decide answers an Access-Request from c: an Access-Accept,
// Access-Reject or Access-Challenge and the result to count. An error
// means no answer (the store failed): the NAS will ask again.
func (s *Server) decide(ctx context.Context, c *Client, p *radius.Packet, nas netip.Addr) (*radius.Packet, string, error) {
	a := core.Actor{Name: "radius:" + c.Name, IP: endUserAddress(c, p, nas), Role: core.RoleVerify}
	user, err := core.CleanUsername(rfc2865.UserName_GetString(p))
	if err != nil {
		return s.reject(ctx, p, a, "", resultBadRequest, err.Error())
	}
	password, err := rfc2865.UserPassword_LookupString(p)
	if err != nil {
		return s.reject(ctx, p, a, user, resultBadRequest, "no User-Password (only PAP is supported)")
	}
	if state := rfc2865.State_Get(p); len(state) > 0 && c.Mode == ModePasswordCode {
		if !s.challenges.take(state, c.Name, user, s.clock.Now()) {
			return s.reject(ctx, p, a, user, resultBadState, "unknown or expired State")
		}
		return s.verify(ctx, p, a, user, password, "password and code after a challenge")
	}
	if c.Mode == ModeCode {
		return s.verify(ctx, p, a, user, password, "code")
	}
	return s.passwordAndCode(ctx, c, p, a, user, password)
}

// passwordAndCode handles ModePasswordCode without a State: the password
// followed by the code, or the password alone (answered with a
// challenge).
func (s *Server) passwordAndCode(ctx context.Context, c *Client, p *radius.Packet, a core.Actor, user, field string) (*radius.Packet, string, error) {
	now := s.clock.Now()
	if !s.passwordAllowed(c, user, a.IP, now) {
		return s.reject(ctx, p, a, user, resultRateLimited, "too many password attempts")
	}
	for _, n := range []int{6, 8} {
		pw, code, ok := splitCode(field, n)
		if !ok {
			continue
		}
		match, err := s.checkPassword(ctx, user, pw)
		if err != nil {
			return nil, "", err
		}
		if match {
			return s.verify(ctx, p, a, user, code, "password and code")
		}
	}
	match, err := s.checkPassword(ctx, user, field)
	if err != nil {
		return nil, "", err
	}
	if !match {
		return s.reject(ctx, p, a, user, resultBadPassword, "wrong password, unknown user or user disabled")
	}
	state := s.challenges.add(c.Name, user, now)
	reply := p.Response(radius.CodeAccessChallenge)
	rfc2865.State_Set(reply, state)
	rfc2865.ReplyMessage_SetString(reply, "Code shown on your totpbox appliance")
	return reply, resultChallenge, nil
}

// passwordAllowed spends one password attempt for user through client c
// from the end user's address ip, and reports whether the limits allow
// it. The user's budget is per client (NAS): attempts through one NAS do
// not spend what the user has on another, and the clients are a fixed
// list, so guesses against one user are bounded by their number times
// the budget. The per-address limit applies only where the address is
// the end user's (TrustStationID): otherwise it is the NAS's own, shared
// by everyone behind it, and wrong passwords for any names would lock
// them all out.
func (s *Server) passwordAllowed(c *Client, user, ip string, now time.Time) bool {
	if c.TrustStationID {
		if ok, _ := s.pwIP.Allow(ip, now); !ok {
			return false
		}
	}
	ok, _ := s.pwUser.Allow(user+"\x00"+c.Name, now)
	return ok
}

// checkPassword checks a password with no more than GOMAXPROCS hashes at
// once.
func (s *Server) checkPassword(ctx context.Context, user, pw string) (bool, error) {
	select {
	case s.hashing <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-s.hashing }()
	return s.core.CheckPassword(ctx, user, pw)
}

// splitCode splits field into a password and its last n characters, when
// they are digits and a password comes before them.
func splitCode(field string, n int) (pw, code string, ok bool) {
	if len(field) <= n {
		return "", "", false
	}
	pw, code = field[:len(field)-n], field[len(field)-n:]
	if strings.Trim(code, "0123456789") != "" {
		return "", "", false
	}
	return pw, code, true
}

// verify checks code with core.Verify, the verify API's operation, and
// answers with its outcome.
func (s *Server) verify(ctx context.Context, p *radius.Packet, a core.Actor, user, code, how string) (*radius.Packet, string, error) {
	clean, err := core.CleanCode(code)
	if err != nil {
		return s.reject(ctx, p, a, user, resultInvalid, err.Error())
	}
	res, err := s.core.Verify(ctx, a, user, clean, a.IP)
	if err != nil {
		var f *core.Failure
		if errors.As(err, &f) && f.Status == http.StatusNotFound {
			return s.reject(ctx, p, a, user, resultUnknownUser, "unknown user")
		}
		return nil, "", err
	}
	if !res.OK {
		return s.reject(ctx, p, a, user, verifyResult(res), res.Reason)
	}
	s.core.Audit(ctx, a, "radius.accept", "user:"+user, how)
	return p.Response(radius.CodeAccessAccept), resultAccept, nil
}

// reject answers with an Access-Reject, recording why in the audit log
// (never in the reply: the NAS's user learns nothing from it), one row
// per client, address, user and reason a minute (see rejects).
func (s *Server) reject(ctx context.Context, p *radius.Packet, a core.Actor, user, result, why string) (*radius.Packet, string, error) {
	target := ""
	if user != "" {
		target = "user:" + user
	}
	s.rejects.add(a, target, why, s.clock.Now())
	return p.Response(radius.CodeAccessReject), result, nil
}

// verifyResult names a refusal of core.Verify.
func verifyResult(res core.VerifyResult) string {
	switch {
	case res.RetryAfter > 0:
		return resultRateLimited
	case res.Reason == core.ReasonReplay:
		return resultReplay
	case res.Reason == core.ReasonNoDevice:
		return resultNoDevice
	case res.Reason == core.ReasonDisabled:
		return resultDisabled
	case strings.HasPrefix(res.Reason, core.ReasonLocked):
		return resultLocked
	}
	return resultInvalid
}

// endUserAddress is the address of the person signing in: the request's
// Framed-IP-Address or Calling-Station-Id when c is trusted to send them,
// otherwise the NAS's own address.
func endUserAddress(c *Client, p *radius.Packet, nas netip.Addr) string {
	if c.TrustStationID {
		if ip, err := rfc2865.FramedIPAddress_Lookup(p); err == nil {
			if a, ok := netip.AddrFromSlice(ip); ok {
				return a.Unmap().String()
			}
		}
		if a, err := netip.ParseAddr(strings.TrimSpace(rfc2865.CallingStationID_GetString(p))); err == nil {
			return a.Unmap().String()
		}
	}
	return nas.String()
}

// addrPort is a UDP source address.
func addrPort(addr net.Addr) netip.AddrPort {
	if u, ok := addr.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(addr.String())
	return ap
}
