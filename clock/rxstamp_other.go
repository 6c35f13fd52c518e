//go:build !linux

package clock

// enableRxStamps does nothing off Linux: replies are stamped when Read
// returns.
func (c *stampedConn) enableRxStamps() {}
