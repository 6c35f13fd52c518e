package radius

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
)

func hmacMD5(key, b []byte) []byte {
	m := hmac.New(md5.New, key)
	m.Write(b)
	return m.Sum(nil)
}

func equalBytes(a, b []byte) bool { return bytes.Equal(a, b) }
