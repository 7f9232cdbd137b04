package lease

// SetScanLimit makes s.List read pages of n items, so that the tests of
// package lease_test see scans of several pages.
func SetScanLimit(s *DynamoDBStore, n int32) { s.scanLimit = n }
