// Package arch holds the architecture test: the import rules that keep the
// two machines apart in the code (see README's Layout). It has no code of
// its own.
package arch
