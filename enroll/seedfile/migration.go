package seedfile

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/totpbox/totpbox/enroll"
)

// MaxMigrationURI bounds an otpauth-migration URI: Google Authenticator
// splits large exports into several QR codes, each well under this.
const MaxMigrationURI = 64 << 10

// ReadMigration decodes Google Authenticator's export, an
// otpauth-migration://offline?data=… URI whose data is a protobuf
// MigrationPayload. It returns every account, TOTP and HOTP alike (the
// caller decides what it takes), each with the Serial "N" of its place in
// the payload. Errors are one line and never contain a secret.
func ReadMigration(uri string) ([]Token, error) {
	if len(uri) > MaxMigrationURI {
		return nil, fmt.Errorf("otpauth-migration URI is longer than %d bytes", MaxMigrationURI)
	}
	u, err := url.Parse(strings.TrimSpace(uri))
	if err != nil || u.Scheme != "otpauth-migration" || u.Host != "offline" {
		return nil, errors.New("not an otpauth-migration://offline URI")
	}
	data := u.Query().Get("data")
	if data == "" {
		return nil, errors.New("otpauth-migration URI has no data")
	}
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(data); err != nil {
			return nil, errors.New("otpauth-migration data is not base64")
		}
	}
	var tokens []Token
	b := raw
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, errors.New("otpauth-migration data is not a valid payload")
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, errors.New("otpauth-migration data is not a valid payload")
			}
			b = b[n:]
			t, err := migrationAccount(v)
			if err != nil {
				return nil, fmt.Errorf("account %d: %v", len(tokens)+1, err)
			}
			t.Serial = fmt.Sprint(len(tokens) + 1)
			tokens = append(tokens, t)
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, errors.New("otpauth-migration data is not a valid payload")
		}
		b = b[n:]
	}
	if len(tokens) == 0 {
		return nil, errors.New("otpauth-migration data holds no accounts")
	}
	return tokens, nil
}

// migrationAccount decodes one OtpParameters message: secret (1), name
// (2), issuer (3), algorithm (4: 1 SHA1, 2 SHA256, 3 SHA512, 4 MD5),
// digits (5: 1 six, 2 eight), type (6: 1 HOTP, 2 TOTP), counter (7).
func migrationAccount(b []byte) (Token, error) {
	t := Token{Kind: TOTP}
	k := enroll.Key{Algorithm: enroll.SHA1, Digits: enroll.DefaultDigits, Period: enroll.DefaultPeriod}
	var kind uint64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return t, errors.New("not a valid account")
		}
		b = b[n:]
		switch {
		case typ == protowire.BytesType && num <= 3:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return t, errors.New("not a valid account")
			}
			b = b[n:]
			switch num {
			case 1:
				k.Secret = append([]byte(nil), v...)
			case 2:
				k.Account = string(v)
			case 3:
				k.Issuer = string(v)
			}
		case typ == protowire.VarintType && num >= 4 && num <= 7:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return t, errors.New("not a valid account")
			}
			b = b[n:]
			switch num {
			case 4:
				switch v {
				case 0, 1:
				case 2:
					k.Algorithm = enroll.SHA256
				case 3:
					k.Algorithm = enroll.SHA512
				default:
					return t, errors.New("algorithm MD5 is not supported")
				}
			case 5:
				if v == 2 {
					k.Digits = 8
				}
			case 6:
				kind = v
			case 7:
				t.Counter = v
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return t, errors.New("not a valid account")
			}
			b = b[n:]
		}
	}
	if kind == 1 {
		t.Kind = HOTP
	}
	// Google Authenticator's names are often "Issuer:account".
	if i := strings.Index(k.Account, ":"); i >= 0 {
		if k.Issuer == "" {
			k.Issuer = strings.TrimSpace(k.Account[:i])
		}
		k.Account = strings.TrimSpace(k.Account[i+1:])
	}
	k.Issuer = strings.ReplaceAll(k.Issuer, ":", " ")
	if err := k.Validate(); err != nil {
		return t, err
	}
	t.Key = k
	return t, nil
}

// AppendMigrationAccount appends one account in the payload's wire form:
// the inverse of what ReadMigration reads, for tests and tools that write
// an export.
func AppendMigrationAccount(payload []byte, t Token) []byte {
	var acc []byte
	acc = protowire.AppendTag(acc, 1, protowire.BytesType)
	acc = protowire.AppendBytes(acc, t.Key.Secret)
	acc = protowire.AppendTag(acc, 2, protowire.BytesType)
	acc = protowire.AppendString(acc, t.Key.Account)
	acc = protowire.AppendTag(acc, 3, protowire.BytesType)
	acc = protowire.AppendString(acc, t.Key.Issuer)
	alg := uint64(1)
	switch t.Key.Algorithm {
	case enroll.SHA256:
		alg = 2
	case enroll.SHA512:
		alg = 3
	}
	acc = protowire.AppendTag(acc, 4, protowire.VarintType)
	acc = protowire.AppendVarint(acc, alg)
	digits := uint64(1)
	if t.Key.Digits == 8 {
		digits = 2
	}
	acc = protowire.AppendTag(acc, 5, protowire.VarintType)
	acc = protowire.AppendVarint(acc, digits)
	kind := uint64(2)
	if t.Kind == HOTP {
		kind = 1
	}
	acc = protowire.AppendTag(acc, 6, protowire.VarintType)
	acc = protowire.AppendVarint(acc, kind)
	acc = protowire.AppendTag(acc, 7, protowire.VarintType)
	acc = protowire.AppendVarint(acc, t.Counter)
	payload = protowire.AppendTag(payload, 1, protowire.BytesType)
	return protowire.AppendBytes(payload, acc)
}

// MigrationURI wraps a payload as an otpauth-migration URI.
func MigrationURI(payload []byte) string {
	return "otpauth-migration://offline?data=" + url.QueryEscape(base64.StdEncoding.EncodeToString(payload))
}
