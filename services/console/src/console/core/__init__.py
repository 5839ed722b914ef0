"""The console's pure view models: no I/O, time passed in."""
