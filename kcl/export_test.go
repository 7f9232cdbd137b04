package kcl

// H2CKinesisClient is h2cKinesisClient for the tests of package kcl_test:
// a Kinesis client that speaks HTTP/2 without TLS to an http:// endpoint,
// as SubscribeToShard needs.
var H2CKinesisClient = h2cKinesisClient

// H2CKinesisClientWindow is h2cKinesisClientWindow for package kcl_test.
var H2CKinesisClientWindow = h2cKinesisClientWindow
