"""The sandbox: API server, GitHub and AWS stand-ins and the demo. Imports the product, never the reverse."""
