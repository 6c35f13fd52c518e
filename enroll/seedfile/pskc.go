package seedfile

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/totpbox/totpbox/enroll"
)

// Keys are what opens an encrypted PSKC file: a password (PBKDF2, RFC
// 6030 §6.2) or a pre-shared key (§6.1). A plain file needs neither.
type Keys struct {
	Password []byte
	PSK      []byte
}

// MaxPBKDF2Iterations bounds the work a file may ask for when deriving its
// key from a password.
const MaxPBKDF2Iterations = 10_000_000

// The URIs of RFC 6030 and XML Encryption this package reads and writes.
const (
	algHOTP     = "urn:ietf:params:xml:ns:keyprov:pskc:hotp"
	algTOTP     = "urn:ietf:params:xml:ns:keyprov:pskc:totp"
	algTOTPOld  = "urn:ietf:params:xml:ns:keyprov:pskc#totp"
	algPBKDF2   = "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2"
	algAES128   = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
	algAES192   = "http://www.w3.org/2001/04/xmlenc#aes192-cbc"
	algAES256   = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
	macSHA1     = "http://www.w3.org/2000/09/xmldsig#hmac-sha1"
	macSHA224   = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha224"
	macSHA256   = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
	macSHA384   = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha384"
	macSHA512   = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha512"
	prfSHA1     = "http://www.w3.org/2000/09/xmldsig#hmac-sha1"
	prfSHA256   = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
	prfSHA512   = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha512"
	pskcVersion = "1.0"
)

// The XML of a PSKC file, by local names: vendors and python-pskc put the
// same elements in different namespaces (pkcs5 or xenc11 for PBKDF2).
type (
	xmlContainer struct {
		XMLName       xml.Name        `xml:"KeyContainer"`
		Version       string          `xml:"Version,attr"`
		EncryptionKey *xmlEncKey      `xml:"EncryptionKey"`
		MACMethod     *xmlMACMethod   `xml:"MACMethod"`
		Packages      []xmlKeyPackage `xml:"KeyPackage"`
	}
	xmlEncKey struct {
		KeyName    string         `xml:"KeyName"`
		DerivedKey *xmlDerivedKey `xml:"DerivedKey"`
	}
	xmlDerivedKey struct {
		Method struct {
			Algorithm string `xml:"Algorithm,attr"`
			Params    struct {
				Salt       string `xml:"Salt>Specified"`
				Iterations int    `xml:"IterationCount"`
				KeyLength  int    `xml:"KeyLength"`
				PRF        struct {
					Algorithm string `xml:"Algorithm,attr"`
				} `xml:"PRF"`
			} `xml:"PBKDF2-params"`
		} `xml:"KeyDerivationMethod"`
	}
	xmlMACMethod struct {
		Algorithm string       `xml:"Algorithm,attr"`
		MACKey    *xmlEncValue `xml:"MACKey"`
	}
	xmlEncValue struct {
		Method struct {
			Algorithm string `xml:"Algorithm,attr"`
		} `xml:"EncryptionMethod"`
		CipherValue string `xml:"CipherData>CipherValue"`
	}
	xmlKeyPackage struct {
		Device struct {
			Manufacturer string `xml:"Manufacturer"`
			SerialNo     string `xml:"SerialNo"`
			Model        string `xml:"Model"`
			UserID       string `xml:"UserId"`
		} `xml:"DeviceInfo"`
		Key *xmlKey `xml:"Key"`
	}
	xmlKey struct {
		ID        string `xml:"Id,attr"`
		Algorithm string `xml:"Algorithm,attr"`
		Issuer    string `xml:"Issuer"`
		UserID    string `xml:"UserId"`
		Params    struct {
			Suite    string `xml:"Suite"`
			Response struct {
				Length   int    `xml:"Length,attr"`
				Encoding string `xml:"Encoding,attr"`
			} `xml:"ResponseFormat"`
		} `xml:"AlgorithmParameters"`
		Data struct {
			Secret       *xmlData `xml:"Secret"`
			Counter      *xmlData `xml:"Counter"`
			TimeInterval *xmlData `xml:"TimeInterval"`
			Time         *xmlData `xml:"Time"`
		} `xml:"Data"`
	}
	xmlData struct {
		Plain     *string      `xml:"PlainValue"`
		Encrypted *xmlEncValue `xml:"EncryptedValue"`
		MAC       string       `xml:"ValueMAC"`
	}
)

// pskcCrypto holds a file's encryption and MAC keys once derived.
type pskcCrypto struct {
	key    []byte // nil: the file has no encrypted values
	macKey []byte
	mac    func() hash.Hash
}

// ReadPSKC reads every key of a PSKC file (RFC 6030): plain, encrypted
// with a pre-shared key or with a key derived from a password (PBKDF2),
// with AES-CBC and an HMAC over each encrypted value. It is all or
// nothing: the first problem (a wrong password, a bad MAC, an unsupported
// algorithm, a duplicate serial) is returned alone, naming the token.
func ReadPSKC(r io.Reader, keys Keys) ([]Token, error) {
	var c xmlContainer
	dec := xml.NewDecoder(r)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("not a PSKC file: %v", err)
	}
	if c.Version != "" && c.Version != pskcVersion {
		return nil, fmt.Errorf("PSKC version %q is not supported (only 1.0)", c.Version)
	}
	if len(c.Packages) == 0 {
		return nil, errors.New("the PSKC file holds no keys")
	}
	cr, err := c.crypto(keys)
	if err != nil {
		return nil, err
	}
	tokens := make([]Token, 0, len(c.Packages))
	for i, p := range c.Packages {
		t, err := p.token(cr)
		if err != nil {
			name := p.Device.SerialNo
			if name == "" && p.Key != nil {
				name = p.Key.ID
			}
			if name == "" {
				name = "#" + strconv.Itoa(i+1)
			}
			return nil, fmt.Errorf("token %s: %v", name, err)
		}
		if err := t.validate(); err != nil {
			return nil, err
		}
		tokens = append(tokens, t)
	}
	if err := checkUnique(tokens); err != nil {
		return nil, err
	}
	return tokens, nil
}

// crypto derives the file's keys from what the caller gave.
func (c *xmlContainer) crypto(keys Keys) (*pskcCrypto, error) {
	if c.EncryptionKey == nil {
		return &pskcCrypto{}, nil
	}
	cr := &pskcCrypto{}
	if dk := c.EncryptionKey.DerivedKey; dk != nil {
		if len(keys.Password) == 0 {
			return nil, errors.New("the PSKC file is encrypted with a password: give it (--password-file)")
		}
		m := dk.Method
		if m.Algorithm != algPBKDF2 {
			return nil, fmt.Errorf("key derivation %q is not supported (only PBKDF2)", m.Algorithm)
		}
		salt, err := base64.StdEncoding.DecodeString(strings.TrimSpace(m.Params.Salt))
		if err != nil || len(salt) == 0 {
			return nil, errors.New("PBKDF2 salt is missing or not base64")
		}
		if m.Params.Iterations < 1 || m.Params.Iterations > MaxPBKDF2Iterations {
			return nil, fmt.Errorf("PBKDF2 iteration count %d is outside 1 to %d", m.Params.Iterations, MaxPBKDF2Iterations)
		}
		n := m.Params.KeyLength
		if n == 0 {
			n = 16
		}
		if n != 16 && n != 24 && n != 32 {
			return nil, fmt.Errorf("PBKDF2 key length %d is not an AES key length", n)
		}
		prf, err := hmacHash(m.Params.PRF.Algorithm, prfSHA1)
		if err != nil {
			return nil, fmt.Errorf("PBKDF2 PRF: %v", err)
		}
		cr.key, err = pbkdf2.Key(prf, string(keys.Password), salt, m.Params.Iterations, n)
		if err != nil {
			return nil, fmt.Errorf("PBKDF2: %v", err)
		}
	} else {
		if len(keys.PSK) == 0 {
			return nil, errors.New("the PSKC file is encrypted with a pre-shared key: give it (--key-file)")
		}
		if n := len(keys.PSK); n != 16 && n != 24 && n != 32 {
			return nil, fmt.Errorf("pre-shared key is %d bytes, not an AES key (16, 24 or 32)", n)
		}
		cr.key = keys.PSK
	}
	if c.MACMethod == nil {
		return nil, errors.New("the PSKC file's encrypted values have no MAC method: refusing values that cannot be checked")
	}
	mac, err := hmacHash(c.MACMethod.Algorithm, "")
	if err != nil {
		return nil, fmt.Errorf("MAC method: %v", err)
	}
	cr.mac = mac
	cr.macKey = cr.key // RFC 6030 §6.1.1: without MACKey, the encryption key
	if c.MACMethod.MACKey != nil {
		k, err := cr.decrypt(c.MACMethod.MACKey)
		if err != nil {
			return nil, fmt.Errorf("wrong password or key: the MAC key does not decrypt (%v)", err)
		}
		cr.macKey = k
	}
	return cr, nil
}

// hmacHash maps an HMAC algorithm URI to its hash; an empty URI means def.
func hmacHash(uri, def string) (func() hash.Hash, error) {
	if uri == "" {
		uri = def
	}
	switch uri {
	case macSHA1:
		return sha1.New, nil
	case macSHA224:
		return sha256.New224, nil
	case macSHA256:
		return sha256.New, nil
	case macSHA384:
		return sha512.New384, nil
	case macSHA512:
		return sha512.New, nil
	}
	return nil, fmt.Errorf("algorithm %q is not supported", uri)
}

// decrypt opens one encrypted value: base64 of IV followed by the AES-CBC
// ciphertext with PKCS#7 padding.
func (cr *pskcCrypto) decrypt(v *xmlEncValue) ([]byte, error) {
	if cr.key == nil {
		return nil, errors.New("encrypted value in a file without an encryption key")
	}
	var want int
	switch v.Method.Algorithm {
	case algAES128:
		want = 16
	case algAES192:
		want = 24
	case algAES256:
		want = 32
	default:
		return nil, fmt.Errorf("encryption algorithm %q is not supported (AES-CBC only)", v.Method.Algorithm)
	}
	if len(cr.key) != want {
		return nil, fmt.Errorf("encryption algorithm needs a %d-byte key, the file's key has %d", want, len(cr.key))
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v.CipherValue))
	if err != nil {
		return nil, errors.New("cipher value is not base64")
	}
	if len(raw) < 2*aes.BlockSize || len(raw)%aes.BlockSize != 0 {
		return nil, errors.New("cipher value has the wrong length for AES-CBC")
	}
	block, err := aes.NewCipher(cr.key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(raw)-aes.BlockSize)
	cipher.NewCBCDecrypter(block, raw[:aes.BlockSize]).CryptBlocks(out, raw[aes.BlockSize:])
	pad := int(out[len(out)-1])
	if pad < 1 || pad > aes.BlockSize || !bytes.Equal(out[len(out)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return nil, errors.New("bad padding")
	}
	return out[:len(out)-pad], nil
}

// value returns a data element's bytes: plain (base64 for the secret,
// text otherwise) or decrypted after its MAC is checked.
func (cr *pskcCrypto) value(d *xmlData, base64Plain bool) ([]byte, error) {
	switch {
	case d.Plain != nil:
		s := strings.TrimSpace(*d.Plain)
		if !base64Plain {
			return []byte(s), nil
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, errors.New("plain value is not base64")
		}
		return b, nil
	case d.Encrypted != nil:
		if cr.key == nil {
			return nil, errors.New("encrypted value in a file without an encryption key")
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(d.Encrypted.CipherValue))
		if err != nil {
			return nil, errors.New("cipher value is not base64")
		}
		got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(d.MAC))
		if err != nil || len(got) == 0 {
			return nil, errors.New("encrypted value without a valid ValueMAC")
		}
		m := hmac.New(cr.mac, cr.macKey)
		m.Write(raw)
		if !hmac.Equal(m.Sum(nil), got) {
			return nil, errors.New("MAC does not match: wrong password or key, or the file was altered")
		}
		b, err := cr.decrypt(d.Encrypted)
		if err != nil {
			return nil, fmt.Errorf("wrong password or key: %v", err)
		}
		// Encrypted values are raw bytes: the secret itself, or an
		// integer in big-endian (RFC 6030 §6.1).
		return b, nil
	}
	return nil, errors.New("value has neither PlainValue nor EncryptedValue")
}

// intValue reads an integer data element, plain (decimal) or encrypted
// (big-endian bytes).
func (cr *pskcCrypto) intValue(d *xmlData) (uint64, error) {
	if d.Plain != nil {
		return strconv.ParseUint(strings.TrimSpace(*d.Plain), 10, 64)
	}
	b, err := cr.value(d, false)
	if err != nil {
		return 0, err
	}
	if len(b) > 8 {
		return 0, errors.New("encrypted integer longer than 8 bytes")
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// token turns one key package into a Token.
func (p *xmlKeyPackage) token(cr *pskcCrypto) (Token, error) {
	k := p.Key
	if k == nil {
		return Token{}, errors.New("key package without a key")
	}
	t := Token{
		Serial:       strings.TrimSpace(p.Device.SerialNo),
		Manufacturer: strings.TrimSpace(p.Device.Manufacturer),
		Model:        strings.TrimSpace(p.Device.Model),
		Owner:        strings.TrimSpace(p.Device.UserID),
	}
	if t.Serial == "" {
		t.Serial = strings.TrimSpace(k.ID)
	}
	if t.Owner == "" {
		t.Owner = strings.TrimSpace(k.UserID)
	}
	switch k.Algorithm {
	case algTOTP, algTOTPOld:
		t.Kind = TOTP
	case algHOTP:
		t.Kind = HOTP
	default:
		return Token{}, fmt.Errorf("algorithm %q is not supported (HOTP and TOTP only)", k.Algorithm)
	}
	if e := k.Params.Response.Encoding; e != "" && e != "DECIMAL" {
		return Token{}, fmt.Errorf("response encoding %s is not supported (DECIMAL only)", e)
	}
	t.Key = enroll.Key{Issuer: strings.TrimSpace(k.Issuer), Account: t.Serial, Algorithm: enroll.SHA1,
		Digits: k.Params.Response.Length, Period: enroll.DefaultPeriod}
	if t.Key.Digits == 0 {
		t.Key.Digits = enroll.DefaultDigits
	}
	switch s := strings.ToUpper(k.Params.Suite); {
	case s == "" || strings.Contains(s, "SHA1") || strings.Contains(s, "SHA-1"):
	case strings.Contains(s, "SHA256") || strings.Contains(s, "SHA-256"):
		t.Key.Algorithm = enroll.SHA256
	case strings.Contains(s, "SHA512") || strings.Contains(s, "SHA-512"):
		t.Key.Algorithm = enroll.SHA512
	default:
		return Token{}, fmt.Errorf("algorithm suite %q is not supported", k.Params.Suite)
	}
	if k.Data.Secret == nil {
		return Token{}, errors.New("key without a secret")
	}
	secret, err := cr.value(k.Data.Secret, true)
	if err != nil {
		return Token{}, fmt.Errorf("secret: %v", err)
	}
	t.Key.Secret = secret
	if d := k.Data.Counter; d != nil {
		if t.Counter, err = cr.intValue(d); err != nil {
			return Token{}, fmt.Errorf("counter: %v", err)
		}
	}
	if d := k.Data.TimeInterval; d != nil && t.Kind == TOTP {
		v, err := cr.intValue(d)
		if err != nil {
			return Token{}, fmt.Errorf("time interval: %v", err)
		}
		t.Key.Period = time.Duration(v) * time.Second
	}
	if d := k.Data.Time; d != nil && t.Kind == TOTP {
		v, err := cr.intValue(d)
		if err != nil {
			return Token{}, fmt.Errorf("time origin: %v", err)
		}
		if v != 0 {
			return Token{}, fmt.Errorf("time origin T0=%d is not supported (only 0, the Unix epoch)", v)
		}
	}
	return t, nil
}
