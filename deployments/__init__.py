"""Ray Serve applications. Everything that imports ``ray`` lives in this package."""
