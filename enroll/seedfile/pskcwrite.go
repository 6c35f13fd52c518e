package seedfile

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// DefaultPBKDF2Iterations is the iteration count WritePSKC uses when none
// is given: python-pskc's default, about 50 ms on a laptop.
const DefaultPBKDF2Iterations = 100_000

// WriteOptions tunes WritePSKC. The zero value uses the defaults.
type WriteOptions struct {
	// Iterations is the PBKDF2 iteration count (DefaultPBKDF2Iterations
	// when 0).
	Iterations int
	// Rand is the source of salt, IVs and the MAC key (crypto/rand when nil).
	Rand io.Reader
}

// WritePSKC writes tokens as a PSKC file encrypted with a key derived from
// password (RFC 6030 §6.2): PBKDF2 with HMAC-SHA1, AES-128-CBC for every
// secret and counter, and HMAC-SHA1 over each encrypted value with a
// random MAC key that is itself encrypted.
func WritePSKC(w io.Writer, tokens []Token, password []byte, o WriteOptions) error {
	if len(password) == 0 {
		return fmt.Errorf("export: a password is required")
	}
	if o.Iterations == 0 {
		o.Iterations = DefaultPBKDF2Iterations
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	salt := make([]byte, 16)
	macKey := make([]byte, 20)
	if _, err := io.ReadFull(o.Rand, salt); err != nil {
		return fmt.Errorf("export: %v", err)
	}
	if _, err := io.ReadFull(o.Rand, macKey); err != nil {
		return fmt.Errorf("export: %v", err)
	}
	key, err := pbkdf2.Key(sha1.New, string(password), salt, o.Iterations, 16)
	if err != nil {
		return fmt.Errorf("export: %v", err)
	}
	enc := func(plain []byte) (string, error) {
		block, err := aes.NewCipher(key)
		if err != nil {
			return "", err
		}
		pad := aes.BlockSize - len(plain)%aes.BlockSize
		buf := make([]byte, aes.BlockSize+len(plain)+pad)
		if _, err := io.ReadFull(o.Rand, buf[:aes.BlockSize]); err != nil {
			return "", err
		}
		copy(buf[aes.BlockSize:], plain)
		for i := len(buf) - pad; i < len(buf); i++ {
			buf[i] = byte(pad)
		}
		cipher.NewCBCEncrypter(block, buf[:aes.BlockSize]).CryptBlocks(buf[aes.BlockSize:], buf[aes.BlockSize:])
		return base64.StdEncoding.EncodeToString(buf), nil
	}
	mac := func(cv string) string {
		raw, _ := base64.StdEncoding.DecodeString(cv)
		m := hmac.New(sha1.New, macKey)
		m.Write(raw)
		return base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	encMACKey, err := enc(macKey)
	if err != nil {
		return fmt.Errorf("export: %v", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<pskc:KeyContainer xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" xmlns:xenc11="http://www.w3.org/2009/xmlenc11#" xmlns:pkcs5="http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#" Version="1.0">
 <pskc:EncryptionKey>
  <xenc11:DerivedKey>
   <xenc11:KeyDerivationMethod Algorithm="%s">
    <pkcs5:PBKDF2-params>
     <Salt><Specified>%s</Specified></Salt>
     <IterationCount>%d</IterationCount>
     <KeyLength>16</KeyLength>
    </pkcs5:PBKDF2-params>
   </xenc11:KeyDerivationMethod>
  </xenc11:DerivedKey>
 </pskc:EncryptionKey>
 <pskc:MACMethod Algorithm="%s">
  <pskc:MACKey>
   <xenc:EncryptionMethod Algorithm="%s"/>
   <xenc:CipherData><xenc:CipherValue>%s</xenc:CipherValue></xenc:CipherData>
  </pskc:MACKey>
 </pskc:MACMethod>
`, algPBKDF2, base64.StdEncoding.EncodeToString(salt), o.Iterations, macSHA1, algAES128, encMACKey)
	for _, t := range tokens {
		if err := t.validate(); err != nil {
			return fmt.Errorf("export: %v", err)
		}
		secret, err := enc(t.Key.Secret)
		if err != nil {
			return fmt.Errorf("export: %v", err)
		}
		alg, suite := algTOTP, "HMAC-"+t.Key.Algorithm.String()
		if t.Kind == HOTP {
			alg = algHOTP
		}
		b.WriteString(" <pskc:KeyPackage>\n  <pskc:DeviceInfo>\n")
		element(&b, "   ", "Manufacturer", t.Manufacturer)
		element(&b, "   ", "SerialNo", t.Serial)
		element(&b, "   ", "Model", t.Model)
		element(&b, "   ", "UserId", t.Owner)
		b.WriteString("  </pskc:DeviceInfo>\n")
		fmt.Fprintf(&b, "  <pskc:Key Id=\"%s\" Algorithm=\"%s\">\n", escape(t.Serial), alg)
		element(&b, "   ", "Issuer", t.Key.Issuer)
		fmt.Fprintf(&b, "   <pskc:AlgorithmParameters>\n    <pskc:Suite>%s</pskc:Suite>\n    <pskc:ResponseFormat Length=\"%d\" Encoding=\"DECIMAL\"/>\n   </pskc:AlgorithmParameters>\n", suite, t.Key.Digits)
		b.WriteString("   <pskc:Data>\n")
		encrypted(&b, "Secret", secret, mac(secret))
		if t.Kind == HOTP {
			var c [8]byte
			binary.BigEndian.PutUint64(c[:], t.Counter)
			counter, err := enc(c[:])
			if err != nil {
				return fmt.Errorf("export: %v", err)
			}
			encrypted(&b, "Counter", counter, mac(counter))
		} else {
			fmt.Fprintf(&b, "    <pskc:TimeInterval><pskc:PlainValue>%d</pskc:PlainValue></pskc:TimeInterval>\n", int(t.Key.Period.Seconds()))
		}
		b.WriteString("   </pskc:Data>\n  </pskc:Key>\n </pskc:KeyPackage>\n")
	}
	b.WriteString("</pskc:KeyContainer>\n")
	_, err = io.WriteString(w, b.String())
	return err
}

// element writes <pskc:name>value</pskc:name> when value is not empty.
func element(b *strings.Builder, indent, name, value string) {
	if value == "" {
		return
	}
	fmt.Fprintf(b, "%s<pskc:%s>%s</pskc:%s>\n", indent, name, escape(value), name)
}

// encrypted writes one encrypted data element with its MAC.
func encrypted(b *strings.Builder, name, cipherValue, mac string) {
	fmt.Fprintf(b, `    <pskc:%s>
     <pskc:EncryptedValue>
      <xenc:EncryptionMethod Algorithm="%s"/>
      <xenc:CipherData><xenc:CipherValue>%s</xenc:CipherValue></xenc:CipherData>
     </pskc:EncryptedValue>
     <pskc:ValueMAC>%s</pskc:ValueMAC>
    </pskc:%s>
`, name, algAES128, cipherValue, mac, name)
}

// escape returns s with XML's special characters escaped.
func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
