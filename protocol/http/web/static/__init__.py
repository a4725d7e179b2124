"""The shared stylesheet and script (a package so they ship in the wheel)."""
