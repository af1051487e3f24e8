"""Use cases shared by pages, SMS replies, jobs and staff corrections."""
