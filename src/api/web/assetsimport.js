export function mountImportTools() {}
