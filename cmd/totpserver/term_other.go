//go:build !linux

package main

import (
	"errors"
	"os"
)

func isTerminal(f *os.File) bool { return false }

func readNoEcho(f *os.File) (string, error) {
	return "", errors.New("password prompt needs Linux; pipe the password on stdin")
}
