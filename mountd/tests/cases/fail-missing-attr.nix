# Fails: selecting an attribute that does not exist.
{ a = 1; }.b
