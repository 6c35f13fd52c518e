//go:build !unix

package localapi

func umask(m int) int { return 0 }
