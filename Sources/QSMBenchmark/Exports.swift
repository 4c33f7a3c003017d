@_exported import QSMCore
