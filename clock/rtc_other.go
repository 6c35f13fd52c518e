//go:build !linux

package clock

import (
	"errors"
	"time"
)

// DeviceRTC is the kernel's RTC device; only Linux has one here.
type DeviceRTC struct{}

// OpenRTC fails: RTC devices are read through Linux's ioctls.
func OpenRTC(path string) (*DeviceRTC, error) {
	return nil, errors.New("RTC devices are supported on Linux only")
}

// Read fails.
func (r *DeviceRTC) Read() (time.Time, error) { return time.Time{}, errors.New("no RTC") }

// Set fails.
func (r *DeviceRTC) Set(time.Time) error { return errors.New("no RTC") }

// Close does nothing.
func (r *DeviceRTC) Close() error { return nil }
