// Package main is a stand-in for the manager: the CLI test cross-compiles it in seconds, not minutes.
package main

func main() {}
