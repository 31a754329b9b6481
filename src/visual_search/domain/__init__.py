"""The bottom layer: what an asset is (its id, its document), the rules that turn a stored key into its
Cloudinary names, and the commands every writer sends into the one ledger-guarded pipeline. It imports
no other visual_search package (only the leaf module `visual_search.errors`); every package above
imports it."""
