package clock

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// DeviceRTC is the kernel's RTC device, e.g. /dev/rtc0, read and set with
// the RTC_RD_TIME and RTC_SET_TIME ioctls. The kernel keeps RTCs in UTC.
type DeviceRTC struct {
	f *os.File
}

// OpenRTC opens an RTC device and reads it once, so a path that is not an
// RTC is found out at start.
func OpenRTC(path string) (*DeviceRTC, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	// EINVAL is an RTC that holds no valid time yet (a new one, or its
	// battery ran out): it is usable, and set after the first good update.
	if _, err := unix.IoctlGetRTCTime(int(f.Fd())); err != nil && err != unix.EINVAL {
		f.Close()
		if err == unix.ENOTTY {
			return nil, fmt.Errorf("%s is not an RTC device", path)
		}
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return &DeviceRTC{f: f}, nil
}

// Read returns the RTC's time.
func (r *DeviceRTC) Read() (time.Time, error) {
	t, err := unix.IoctlGetRTCTime(int(r.f.Fd()))
	if err != nil {
		return time.Time{}, fmt.Errorf("rtc: %s: %v", r.f.Name(), err)
	}
	return time.Date(int(t.Year)+1900, time.Month(t.Mon+1), int(t.Mday), int(t.Hour), int(t.Min), int(t.Sec), 0, time.UTC), nil
}

// Set sets the RTC to t rounded to the second.
func (r *DeviceRTC) Set(t time.Time) error {
	t = t.Round(time.Second).UTC()
	rt := unix.RTCTime{
		Sec: int32(t.Second()), Min: int32(t.Minute()), Hour: int32(t.Hour()),
		Mday: int32(t.Day()), Mon: int32(t.Month()) - 1, Year: int32(t.Year()) - 1900,
	}
	if err := unix.IoctlSetRTCTime(int(r.f.Fd()), &rt); err != nil {
		return fmt.Errorf("rtc: %s: %v", r.f.Name(), err)
	}
	return nil
}

// Close closes the device.
func (r *DeviceRTC) Close() error { return r.f.Close() }
