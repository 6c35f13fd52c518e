package radius

import "time"

// SignRequest is signRequest for the external tests' client.
var SignRequest = signRequest

// PasswordLimitKeys is how many keys the password limits hold in this
// process.
func (s *Server) PasswordLimitKeys() int {
	n := s.pwIP.Len()
	if l, ok := s.pwUser.(interface{ Len() int }); ok {
		n += l.Len()
	}
	return n
}

// AllowPassword is passwordAllowed for the i-th client.
func (s *Server) AllowPassword(i int, user, ip string, now time.Time) bool {
	return s.passwordAllowed(&s.clients[i], user, ip, now)
}
