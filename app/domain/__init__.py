"""Pure domain: standard library and phonenumbers only. No I/O, no clock reads except where passed in."""
