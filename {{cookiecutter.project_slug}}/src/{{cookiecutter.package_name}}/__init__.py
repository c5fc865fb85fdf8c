"""The function package: an HTTP API over MongoDB Atlas, one MongoClient per Lambda environment."""
