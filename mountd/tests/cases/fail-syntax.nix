# Fails: a syntax error.
{ a = 1 
