# Fails: an uncaught throw.
{ a = 1; b = throw "a deliberate failure"; }
