package radius

// SignRequest is signRequest for the external tests' client.
var SignRequest = signRequest
