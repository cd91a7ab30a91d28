/** The workspace's ignore files task-list reads for its data-root hint (task-list/data-root.ts); named files of its key. */
export const DATA_ROOT_IGNORE_FILES = ['.nxignore', '.gitignore'] as const;
