package display

// Status glyphs, 7 pixels high, hand-drawn for 1-bit panels.
var (
	// iconSynced is a clock face: time is disciplined by NTP.
	iconSynced = []string{
		"..###..",
		".#...#.",
		"#..#..#",
		"#..##.#",
		"#.....#",
		".#...#.",
		"..###..",
	}
	// iconHoldover is an hourglass: time runs on the local oscillator.
	iconHoldover = []string{
		"#######",
		".#...#.",
		"..#.#..",
		"...#...",
		"..###..",
		".#####.",
		"#######",
	}
	// iconUntrusted is a warning sign: the error bound is too large.
	iconUntrusted = []string{
		"...#...",
		"..###..",
		"..#.#..",
		".##.##.",
		".#####.",
		"###.###",
		"#######",
	}
	// iconUnsynced is a question mark: never synchronised.
	iconUnsynced = []string{
		".#####.",
		"##...##",
		"....##.",
		"...##..",
		"...##..",
		".......",
		"...##..",
	}
	// iconLinkUp is two arrows, up and down: syncing with the server.
	iconLinkUp = []string{
		".#.....",
		"###..#.",
		".#...#.",
		".#...#.",
		".#...#.",
		".#..###",
		".....#.",
	}
	// iconLinkDown is an arrow and a cross: the server is unreachable.
	iconLinkDown = []string{
		".#.......",
		"###......",
		".#..#...#",
		".#...#.#.",
		".#....#..",
		".#...#.#.",
		".#..#...#",
	}
)

// iconSize is the height of every status glyph.
const iconSize = 7

func iconWidth(rows []string) int { return len(rows[0]) }

func timeIcon(t TimeState) []string {
	switch t {
	case TimeSynced:
		return iconSynced
	case TimeHoldover:
		return iconHoldover
	case TimeUntrusted:
		return iconUntrusted
	}
	return iconUnsynced
}

func linkIcon(l Link) []string {
	switch l {
	case LinkUp:
		return iconLinkUp
	case LinkDown:
		return iconLinkDown
	}
	return nil
}
